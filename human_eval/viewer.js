const $ = (id) => document.getElementById(id);
const state = { sort: "id", desc: false, filter: "all", offset: 0, limit: 50, total: 0 };
let sample = null, step = 0;
const fmt = (v) => typeof v === "number" ? v.toFixed(4) : (Array.isArray(v) ? v.map(x => typeof x === "number" ? x.toFixed(3) : "").join(" / ") : "");
function cell(tr, text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td); return td; }

async function loadList() {
  const q = new URLSearchParams({ sort: state.sort, desc: state.desc, filter: state.filter, offset: state.offset, limit: state.limit });
  const r = await fetch("/api/samples?" + q); const data = await r.json();
  if (!r.ok) { $("summary").textContent = data.detail; return; }
  state.total = data.total;
  $("title").textContent = "MILS run viewer: " + (data.name || "run") + (data.task ? " (" + data.task + ")" : "");
  $("headline").textContent = data.headline || "";
  $("summary").textContent = data.samples + " samples, " + data.failed + " failed; scores: " +
    (data.lower_is_better ? "lower is better (gain = step 0 - final)" : "higher is better (gain = final - step 0)");
  $("problems").textContent = data.problem_count ? data.problem_count + " result file(s) could not be read and are not shown: " +
    data.problems.slice(0, 20).map(([path, why]) => path + " (" + why + ")").join("; ") : "";
  const body = $("rows"); body.innerHTML = "";
  for (const row of data.rows) {
    const tr = document.createElement("tr"); tr.dataset.id = row.sample_id;
    cell(tr, row.sample_id); cell(tr, fmt(row.step0), "num"); cell(tr, fmt(row.final), "num");
    cell(tr, row.gain === null ? "" : (row.gain > 0 ? "+" : "") + row.gain.toFixed(4), "num " + (row.gain > 0 ? "up" : ""));
    cell(tr, row.error ? "" : row.steps, "num"); cell(tr, row.empty_replies || "", "num");
    cell(tr, row.error ? "failed: " + row.error : row.caption, row.error ? "err" : "");
    if (sample && sample.sample_id === row.sample_id) tr.classList.add("open");
    tr.onclick = () => openSample(row.sample_id);
    body.appendChild(tr);
  }
  const end = Math.min(state.offset + state.limit, state.total);
  $("range").textContent = state.total ? (state.offset + 1) + "\u2013" + end + " of " + state.total : "no samples";
  $("prev").disabled = state.offset === 0; $("next").disabled = end >= state.total;
  document.querySelectorAll("th.sort").forEach(th => th.textContent = th.textContent.replace(/ [\u25b2\u25bc]$/, "") +
    (th.dataset.sort === state.sort ? (state.desc ? " \u25bc" : " \u25b2") : ""));
}

const SVG = "http://www.w3.org/2000/svg";
function svg(name, attrs, text) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = String(text);
  return el;
}
// the score-by-step chart, built from nodes: every value from a result file goes in as text or a number
function chart(steps, lowerIsBetter) {
  const w = 420, h = 140, pad = 30, num = (v) => typeof v === "number" && isFinite(v) ? v : null;
  const ys = steps.map(s => num(s.best_score)), ms = steps.map(s => num(s.mean_topk));
  const all = ys.concat(ms).filter(v => v !== null), lo = all.length ? Math.min(...all) : 0, hi = all.length ? Math.max(...all) : 1;
  const span = (hi - lo) || 1;
  const x = (i) => pad + i * (w - 2 * pad) / Math.max(steps.length - 1, 1), y = (v) => h - pad + 10 - (v - lo) / span * (h - 2 * pad);
  const root = svg("svg", { width: w, height: h, role: "img", "aria-label": "score by step" });
  root.appendChild(svg("text", { x: 2, y: 12 }, hi.toFixed(3)));
  root.appendChild(svg("text", { x: 2, y: h - pad + 10 }, lo.toFixed(3)));
  steps.forEach((s, i) => root.appendChild(svg("text", { x: x(i) - 3, y: h - 4 }, s.step)));
  for (const [vals, color] of [[ms, "#9bb0e8"], [ys, "#3355cc"]]) {
    const points = vals.map((v, i) => v === null ? null : x(i) + "," + y(v)).filter(p => p !== null).join(" ");
    root.appendChild(svg("polyline", { fill: "none", stroke: color, "stroke-width": 2, points }));
    vals.forEach((v, i) => root.appendChild(svg("circle", { cx: x(i), cy: v === null ? -10 : y(v), r: 3, fill: color })));
  }
  root.appendChild(svg("circle", { id: "cur", r: 6, fill: "none", stroke: "#b42318", "stroke-width": 2 }));
  const note = document.createElement("div"); note.className = "muted";
  note.textContent = "best (dark) and mean of the kept top-K (light) by step" + (lowerIsBetter ? "; lower is better" : "");
  const box = document.createDocumentFragment(); box.appendChild(root); box.appendChild(note);
  return box;
}

function pairs(tbody, list) {
  const el = $(tbody); el.innerHTML = "";
  if (list === null) { const tr = document.createElement("tr"); cell(tr, "not recorded (a run written before per-step traces)", "muted"); el.appendChild(tr); return; }
  for (const [text, score] of list) { const tr = document.createElement("tr"); cell(tr, fmt(score), "num"); cell(tr, text); el.appendChild(tr); }
}

function showStep(n) {
  if (!sample) return;
  step = Math.max(0, Math.min(n, sample.steps.length - 1));
  const s = sample.steps[step];
  $("stepname").textContent = "step " + s.step + " of " + (sample.steps.length - 1);
  $("stepinfo").textContent = "score " + fmt(s.best_score) + (s.step ? " \u00b7 " + s.new_unique + " new candidates" : " \u00b7 initial candidates") +
    (s.empty_reply ? " \u00b7 the LLM's reply had no usable line: this step added no candidates" : "") + (sample.stopped_early_at === s.step ? " \u00b7 stopped early" : "");
  $("best").textContent = s.best;
  pairs("kept", s.kept); pairs("new", s.step === 0 ? [] : s.new);
  const reply = $("reply"); reply.innerHTML = "";
  if (s.reply === null) reply.textContent = s.step === 0 ? "(step 0 asks no LLM: its candidates are the initial ones)" : "(no reply recorded)";
  else for (const l of s.reply) { const d = document.createElement("div"); d.className = l.parsed ? "parsed" : "dropped"; d.textContent = l.line; reply.appendChild(d); }
  const circles = document.querySelectorAll("#chart circle:not(#cur)"), cur = document.querySelector("#chart #cur");
  const dot = circles[sample.steps.length + step];
  if (dot && cur) { cur.setAttribute("cx", dot.getAttribute("cx")); cur.setAttribute("cy", dot.getAttribute("cy")); }
  document.querySelectorAll("#stepimgs img").forEach((im, i) => im.classList.toggle("cur", i === step));
  $("sprev").disabled = step === 0; $("snext").disabled = step === sample.steps.length - 1;
}

// under the image: the sample's own reference metrics at step 0 and final, and its references
function showScores(metrics, references) {
  const at = (step, n) => metrics[step] && typeof metrics[step][n] === "number" ? metrics[step][n].toFixed(1) : "-";
  const names = Object.keys(metrics.final || metrics["step 0"] || {});
  const shown = ["CIDEr", "SPICE", "METEOR", "BLEU-4"].filter(n => names.includes(n));
  $("scores").textContent = shown.length ? "this sample (x100): " + shown.map(n => n + " " + at("step 0", n) +
    " \u2192 " + at("final", n)).join(" \u00b7 ") + " (step 0 \u2192 final)" : "no reference metrics recorded for this sample";
  const refs = $("refs"); refs.innerHTML = "";
  const head = document.createElement("b"); head.textContent = references.length ? "References" : "";
  const list = document.createElement("ul");
  for (const text of references) { const li = document.createElement("li"); li.textContent = text; list.appendChild(li); }
  refs.appendChild(head); refs.appendChild(list);
}

async function openSample(id) {
  const r = await fetch("/api/sample?id=" + encodeURIComponent(id)); const data = await r.json();
  if (!r.ok) { sample = null; $("detail").textContent = data.detail; return; }
  sample = data; location.hash = "sample=" + encodeURIComponent(id);
  $("detail").innerHTML = ""; $("detail").appendChild($("sample-tpl").content.cloneNode(true));
  $("sid").textContent = data.sample_id;
  const m = data.media;
  if (m.kind === "image" || m.kind === "video") { const img = document.createElement("img"); img.src = m.url; img.alt = data.sample_id; $("media").appendChild(img); }
  else if (m.kind === "audio") { const a = document.createElement("audio"); a.controls = true; a.src = m.url; $("media").appendChild(a); }
  showScores(data.metrics || {}, data.references || []);
  for (const [i, url] of m.steps.entries()) { const img = document.createElement("img"); img.src = url; img.title = "best image after step " + i; img.onclick = () => showStep(i); $("stepimgs").appendChild(img); }
  $("chart").replaceChildren(chart(data.steps, data.lower_is_better));
  $("sprev").onclick = () => showStep(step - 1); $("snext").onclick = () => showStep(step + 1);
  document.querySelectorAll("#rows tr").forEach(tr => tr.classList.toggle("open", tr.dataset.id === id));
  showStep(data.steps.length - 1);
}

document.querySelectorAll("th.sort").forEach(th => th.onclick = () => {
  state.desc = state.sort === th.dataset.sort ? !state.desc : th.dataset.sort !== "id"; state.sort = th.dataset.sort; state.offset = 0; loadList();
});
$("filter").onchange = () => {
  state.filter = $("filter").value; state.offset = 0;
  if (state.filter === "gain" || state.filter === "hurt") { state.sort = "gain"; state.desc = state.filter === "gain"; }
  loadList();
};
$("prev").onclick = () => { state.offset = Math.max(0, state.offset - state.limit); loadList(); };
$("next").onclick = () => { state.offset += state.limit; loadList(); };
document.addEventListener("keydown", (e) => {
  if (e.target.tagName === "SELECT" || !sample) return;
  if (e.key === "ArrowLeft") showStep(step - 1); else if (e.key === "ArrowRight") showStep(step + 1);
});
loadList();
const opened = new URLSearchParams(location.hash.slice(1)).get("sample");
if (opened) openSample(opened);
