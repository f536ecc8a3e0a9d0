// charrnn serve's page: the prime box streams a sample through POST /v1/sample (server-sent
// events read from fetch, since EventSource cannot POST); the score box colours text by
// surprisal from POST /v1/score, with the edges the server sends. Plain script, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
let running = null; // the AbortController of the sample being streamed

function showError(element, message) {
  element.textContent = message;
  element.classList.add("error");
}

function showStatus(element, message) {
  element.textContent = message;
  element.classList.remove("error");
}

async function errorOf(response) {
  try {
    return (await response.json()).error || response.statusText;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

async function describeModel() {
  const response = await fetch("/v1/model");
  if (!response.ok) return showError($("model"), await errorOf(response));
  const model = await response.json();
  showStatus($("model"), `${model.info.model}; ${model.info.parameters} parameters, on ${model.device}`);
  $("length").max = model.limits.max_length;
}

// Server-sent events from a fetch body: blocks separated by a blank line, "event:" and "data:".
async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = { name: "message", data: "" };
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) event.name = line.slice(7);
        else if (line.startsWith("data: ")) event.data += line.slice(6);
      }
      yield { name: event.name, data: JSON.parse(event.data || "{}") };
    }
  }
}

function sampleRequest() {
  const body = {
    prime: $("prime").value,
    length: Number($("length").value),
    temperature: Number($("temperature").value),
    stream: true,
  };
  const topP = Number($("top-p").value);
  if (topP < 1) body.top_p = topP;
  if ($("seed").value !== "") body.seed = Number($("seed").value);
  return body;
}

async function generate() {
  const output = $("output");
  const status = $("sample-status");
  running = new AbortController();
  $("generate").disabled = true;
  $("stop").disabled = false;
  output.textContent = "";
  showStatus(status, "generating\u2026");
  try {
    const response = await fetch("/v1/sample", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(sampleRequest()),
      signal: running.signal,
    });
    if (!response.ok) return showError(status, await errorOf(response));
    for await (const event of events(response)) {
      if (event.name === "start") {
        const prime = document.createElement("span");
        prime.className = "prime";
        prime.textContent = event.data.prime;
        output.append(prime);
        if (event.data.note) showStatus(status, event.data.note);
      } else if (event.name === "piece") {
        output.append(event.data.text);
      } else if (event.name === "sample") {
        const s = event.data;
        showStatus(status, `${s.chars} characters, seed ${s.seed}, logprob ${s.logprob.toFixed(2)}`);
      } else if (event.name === "error") {
        showError(status, event.data.error);
      }
    }
  } catch (problem) {
    if (problem.name === "AbortError") showStatus(status, "stopped");
    else showError(status, String(problem));
  } finally {
    running = null;
    $("generate").disabled = false;
    $("stop").disabled = true;
  }
}

function bucket(bits, edges) {
  if (bits === null) return "unknown"; // outside the vocabulary: no probability
  let index = 0;
  while (index < edges.length && bits >= edges[index]) index += 1;
  return `s${index}`;
}

// Each row's text, character by character on its surprisal's colour; runs of a colour merged.
// A scored newline (one more value than the text has characters) is shown as a coloured mark.
function drawHeatmap(rows, edges) {
  const heatmap = $("heatmap");
  heatmap.textContent = "";
  for (const row of rows) {
    const chars = Array.from(row.text);
    if (row.surprisal.length > chars.length) chars.push("\u21b5\n");
    let run = "";
    let runClass = null;
    const flush = () => {
      if (!run) return;
      const span = document.createElement("span");
      span.className = runClass;
      span.textContent = run;
      heatmap.append(span);
      run = "";
    };
    chars.forEach((char, index) => {
      const cls = bucket(row.surprisal[index], edges);
      if (cls !== runClass) flush();
      runClass = cls;
      run += char === "\u21b5\n" ? "\u21b5" : char;
      if (char === "\u21b5\n") {
        flush();
        heatmap.append("\n");
      }
    });
    flush();
  }
}

function drawLegend(edges) {
  const legend = $("legend");
  legend.textContent = "surprisal in bits (-log2 p): ";
  const labels = [`<${edges[0]}`];
  for (let i = 1; i < edges.length; i += 1) labels.push(`${edges[i - 1]}-${edges[i]}`);
  labels.push(`>=${edges[edges.length - 1]}`);
  labels.forEach((label, index) => {
    const span = document.createElement("span");
    span.className = `s${index}`;
    span.textContent = label;
    legend.append(span);
  });
  const unknown = document.createElement("span");
  unknown.className = "unknown";
  unknown.textContent = "unknown";
  legend.append(unknown);
}

async function score() {
  const status = $("score-status");
  showStatus(status, "scoring\u2026");
  const response = await fetch("/v1/score", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ text: $("score-text").value, surprisal: true }),
  });
  if (!response.ok) return showError(status, await errorOf(response));
  const result = await response.json();
  drawHeatmap(result.rows, result.surprisal_edges);
  drawLegend(result.surprisal_edges);
  const total = result.total;
  const bits = total.bits_per_char === null ? "-" : total.bits_per_char.toFixed(3);
  const perplexity = total.perplexity === null ? "-" : total.perplexity.toFixed(2);
  showStatus(status, `${total.lines} lines, ${total.chars} characters: ${bits} bits/char, perplexity ${perplexity}`);
}

function showValue(input, output, off) {
  const update = () => {
    output.textContent = off && Number(input.value) >= 1 ? "1 (off)" : input.value;
  };
  input.addEventListener("input", update);
  update();
}

window.addEventListener("DOMContentLoaded", () => {
  showValue($("temperature"), $("temperature-value"), false);
  showValue($("top-p"), $("top-p-value"), true);
  $("generate").addEventListener("click", generate);
  $("stop").addEventListener("click", () => running && running.abort());
  $("score").addEventListener("click", score);
  describeModel();
});
