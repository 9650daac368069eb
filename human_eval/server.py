"""`mils judge serve BATCH_DIR`: the same batch as the AMT form, for in-house raters.

Every answer is written to SQLite (``BATCH_DIR/judgements.sqlite``) the moment it is given, so a
reload or a server restart loses nothing and a rater resumes where they stopped; answers are
keyed by (rater, pair), so two raters never clash. Media are served from ``BATCH_DIR/upload``
only. ``GET /api/export`` returns a CSV that ``mils human-eval ingest`` reads like an AMT file.
"""

from __future__ import annotations

import csv
import io
import json
import secrets
import sqlite3
import time
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field, ValidationError

from human_eval import invites
from human_eval.export import COLUMNS, escape_cell
from human_eval.protocol import CHOICES, RATER_NAME
from human_eval.web_safety import is_loopback
from mils.errors import InputError, MissingInputError
from mils.files import plain_file_or_absent, real_folder

MAX_REASONS = 5


class Answer(BaseModel):
    rater: str = Field("", max_length=64)  # ignored when the batch takes raters by invite link
    pair_id: str = Field(max_length=64)
    choice: str = Field(max_length=8)
    reasons: list[int] = Field(default_factory=list, max_length=MAX_REASONS)


def _plain_database(db: Path) -> Path:
    """The database and SQLite's side files must be regular files or absent: SQLite follows a link
    planted in a batch from elsewhere (into another database, anywhere)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        plain_file_or_absent(f"{db}{suffix}", "the judging page does not open it; export the batch again")
    return db


def _connect(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(_plain_database(db), timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS answers (rater TEXT NOT NULL, pair_id TEXT NOT NULL, choice TEXT NOT NULL, "
        "reasons TEXT NOT NULL, answered_at REAL NOT NULL, PRIMARY KEY (rater, pair_id))"
    )
    return conn


def create_app(batch_dir: str | Path, require_invites: bool = False, origins: tuple[str, ...] = ()) -> FastAPI:
    """The judging page's routes. ``require_invites`` (a server for the network) and invites present
    at start both fix invite mode for the server's life, whatever happens to ``invites.json`` later."""
    from human_eval.web_safety import Guard

    batch = Path(batch_dir).resolve()
    pairs = _pairs(batch)
    order = [p["pair_id"] for p in pairs]
    by_id = {p["pair_id"]: p for p in pairs}
    upload = real_folder(batch / "upload", "this batch is not served; export it again with `mils human-eval export`")
    db = _plain_database(batch / "judgements.sqlite")
    gate = _Gate(batch, require_invites or invites.active(batch))
    app = FastAPI(title="MILS pairwise judging", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(sqlite3.Error, _storage_failed)
    app.add_exception_handler(OSError, _storage_failed)

    @app.get("/", response_class=HTMLResponse)
    def page(request: Request) -> str:
        if gate.invite_only():
            gate.rater(request, "")
        return PAGE

    @app.get("/page.js")
    def script() -> Response:
        return Response(SCRIPT, media_type="text/javascript")

    @app.get("/api/next")
    def next_pair(request: Request, rater: str = "") -> dict:
        rater = gate.rater(request, rater)
        with _connect(db) as conn:
            done = {r[0] for r in conn.execute("SELECT pair_id FROM answers WHERE rater = ?", (rater,))}
        remaining = [pid for pid in order if pid not in done]
        pair = by_id[remaining[0]] if remaining else None
        if pair is not None:
            pair = {**pair, **{k: _media_url(pair[k]) for k in ("left_url", "right_url", "context_url")},
                    "reasons": pair["reasons"].split("|") if pair["reasons"] else []}
        return {"done": len(order) - len(remaining), "total": len(order), "pair": pair, "rater": rater}

    @app.post("/api/answer")
    async def answer(request: Request) -> dict:
        if gate.invite_only():  # the link is checked before the body is read
            gate.rater(request, "")
        return _store_answer(await request.body(), request, gate, by_id, db)

    @app.get("/media/{name}")
    def media(name: str, request: Request) -> FileResponse:
        if gate.invite_only():
            gate.rater(request, "")
        path = (upload / name).resolve()
        if path.parent != upload or not path.is_file():
            raise HTTPException(404, "no such media file in this batch")
        return FileResponse(path)

    @app.get("/api/export", response_class=PlainTextResponse)
    def export(request: Request) -> str:
        gate.require_admin(request)
        return export_csv(db)

    return Guard(app, loopback_only=not require_invites, max_body=MAX_BODY, origins=origins)


MAX_BODY = 16 * 1024  # an answer is a few hundred bytes


def _pairs(batch: Path) -> list[dict]:
    """The batch's ``pairs.json``; a missing or malformed one is one line naming it."""
    pairs_file = batch / "pairs.json"
    if not pairs_file.is_file():
        raise MissingInputError(f"{pairs_file} not found: is {batch} a folder written by `mils human-eval export`?")
    try:
        pairs = json.loads(pairs_file.read_text())
        if not isinstance(pairs, list):
            raise TypeError("not a list")
        for n, pair in enumerate(pairs):  # every field the page shows: a missing one was a 500 on every /api/next
            missing = [c for c in COLUMNS if c != "reasons" and not isinstance(pair.get(c) if isinstance(pair, dict)
                                                                               else None, str)]
            if missing:
                raise KeyError(f"pair {n} has no text for {', '.join(missing)}")
    except (ValueError, TypeError, KeyError, RecursionError) as err:
        raise InputError(f"{pairs_file} is not a list of pairs, each with {', '.join(COLUMNS[:-1])} "
                         f"({type(err).__name__}: {str(err)[:120]}): export the batch again with `mils human-eval "
                         "export`") from None
    return pairs


def _storage_failed(request: Request, err: Exception) -> JSONResponse:
    """A full disk or a read-only batch folder: a JSON answer the page can show, not a bare 500."""
    return JSONResponse({"detail": "the batch folder cannot be written or read just now (disk full?): nothing was "
                                   "stored; try again"}, status_code=503)


def _store_answer(raw: bytes, request: Request, gate: "_Gate", by_id: dict, db: Path) -> dict:
    try:
        body = Answer.model_validate_json(raw)
    except ValidationError as err:
        raise HTTPException(422, "an answer is {rater, pair_id, choice, reasons} within their limits") from err
    rater = gate.rater(request, body.rater)
    if body.pair_id not in by_id:
        raise HTTPException(404, "unknown pair id")
    if body.choice not in CHOICES:
        raise HTTPException(400, "choice must be 'left' or 'right'")
    reasons = sorted({r for r in body.reasons if 0 <= r < MAX_REASONS})
    with _connect(db) as conn:
        cur = conn.execute("INSERT OR IGNORE INTO answers VALUES (?, ?, ?, ?, ?)",
                           (rater, body.pair_id, body.choice, json.dumps(reasons), time.time()))
    return {"stored": cur.rowcount == 1}


class _Gate:
    """Who may use the batch. Invite mode is fixed when the server starts; ``invites.json`` is
    re-read per request (a revocation takes effect at once), and when it is missing, emptied or
    broken in invite mode, nobody gets in (fail closed)."""

    def __init__(self, batch: Path, invite_mode: bool) -> None:
        self.batch, self.invite_mode = batch, invite_mode

    def invite_only(self) -> bool:
        if self.invite_mode:
            return True
        try:
            return invites.active(self.batch)
        except InputError as err:  # a broken invite file never opens the batch
            raise HTTPException(503, "the batch's invite file is unreadable: nobody is served until it is restored") from err

    def _invites(self) -> dict:
        try:
            return invites.read(self.batch)
        except InputError as err:
            raise HTTPException(503, "the batch's invite file is unreadable: nobody is served until it is restored") from err

    def rater(self, request: Request, name: str) -> str:
        """The invite link's rater in invite mode (a request without a valid link is refused), else
        the name the rater typed."""
        if self.invite_only():
            self._invites()
            token = request.query_params.get("invite") or request.headers.get("x-invite")
            rater = invites.rater_of(self.batch, token) if token and len(token) <= 128 else None
            if rater is None:
                raise HTTPException(403, "this batch takes raters by invite link only; ask for yours")
            return rater
        name = (name or "").strip(" ")  # "bob", "bob " and " bob" are one rater (as at ingest)
        if not RATER_NAME.fullmatch(name):
            raise HTTPException(400, "rater name: 1-64 letters, digits, spaces, . @ - _")
        return name

    def require_admin(self, request: Request) -> None:
        """With invites, raters' links do not open the export: the admin token does."""
        if self.invite_only():
            token = request.query_params.get("admin") or request.headers.get("x-admin-token") or ""
            admin = self._invites().get("admin")
            if not (isinstance(admin, str) and token and secrets.compare_digest(token.encode(), admin.encode())):
                raise HTTPException(403, "the export needs the batch's admin token (mils judge invite prints it)")


def export_csv(db: Path) -> str:
    """Every stored answer in AMT's batch-results columns (what `mils human-eval ingest` reads)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Input.pair_id", "Answer.choice", "WorkerId", "AssignmentId",
                     *[f"Answer.reason_{i}" for i in range(MAX_REASONS)], "SubmitTime"])
    with _connect(db) as conn:
        rows = conn.execute("SELECT rater, pair_id, choice, reasons, answered_at FROM answers "
                            "ORDER BY answered_at").fetchall()
    for rater, pid, choice, reasons, at in rows:
        ticked = set(json.loads(reasons))
        writer.writerow([pid, choice, escape_cell(rater), escape_cell(f"{rater}:{pid}"),
                         *["on" if i in ticked else "" for i in range(MAX_REASONS)], f"{at:.3f}"])
    return out.getvalue()


def _media_url(value: str) -> str:
    return "/media/" + value.removeprefix("upload/") if value.startswith("upload/") else value


def serve(batch_dir: str | Path, host: str = "127.0.0.1", port: int = 8765, origins: tuple[str, ...] = ()) -> None:
    """Loopback for anyone at this machine; any other address only with invite links. ``origins``:
    where a reverse proxy that rewrites Host serves the page (answers from there are accepted)."""
    import uvicorn

    network = not is_loopback(host)
    if network and not invites.active(batch_dir):
        raise InputError(f"refusing to serve {batch_dir} on {host} to everyone who can reach it: create invite "
                         f"links first (mils judge invite {batch_dir} NAME...), or serve on 127.0.0.1")

    uvicorn.run(create_app(batch_dir, require_invites=network, origins=origins), host=host, port=port,
                log_level="warning")


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>MILS pairwise judging</title>
<style>
 body { font-family: system-ui, sans-serif; max-width: 980px; margin: 1.5em auto; padding: 0 1em; }
 .sides { display: flex; gap: 1em; } .side { flex: 1; border: 2px solid #ccc; border-radius: 8px; padding: 1em; }
 .side.picked { border-color: #1a7f37; background: #effaf1; } .side img { max-width: 100%; }
 #context img { max-height: 320px; } .muted { color: #666; } kbd { border: 1px solid #aaa; border-radius: 3px; padding: 0 4px; }
 button { font-size: 1em; padding: .4em 1.2em; }
</style></head><body>
<h2>Which is better?</h2>
<div id="login"><label>Your name: <input id="name" autocomplete="username"></label> <button id="start">Start</button></div>
<div id="task" hidden>
  <p class="muted">Rater <b id="who"></b> &middot; <span id="progress"></span> &middot;
     keys: <kbd>1</kbd>/<kbd>&larr;</kbd> left, <kbd>2</kbd>/<kbd>&rarr;</kbd> right, <kbd>a</kbd>-<kbd>e</kbd> reasons, <kbd>Enter</kbd> submit</p>
  <div id="context"></div>
  <h3 id="question"></h3>
  <div class="sides"><div class="side" id="left"></div><div class="side" id="right"></div></div>
  <h3>Why? Tick every reason that applies.</h3><div id="reasons"></div>
  <p><button id="submit" disabled>Submit</button></p>
</div>
<div id="finished" hidden><h3>All pairs done. Thank you!</h3></div>
<script src="/page.js"></script></body></html>
"""

SCRIPT = """let rater = localStorage.getItem("mils-rater") || "", pair = null, choice = null;
const invite = new URLSearchParams(location.search).get("invite");  // an invite link names the rater
const $ = (id) => document.getElementById(id);
const withInvite = (url) => invite && url.startsWith("/") ? url + (url.includes("?") ? "&" : "?") + "invite=" + encodeURIComponent(invite) : url;
function side(el, text, url) {
  el.innerHTML = ""; if (url) { const img = document.createElement("img"); img.src = withInvite(url); el.appendChild(img); }
  if (text) { const p = document.createElement("p"); p.textContent = text; el.appendChild(p); }
}
function pick(which) { choice = which; $("left").classList.toggle("picked", which === "left");
  $("right").classList.toggle("picked", which === "right"); $("submit").disabled = false; }
async function load() {
  const r = await fetch(withInvite("/api/next?rater=" + encodeURIComponent(rater))); const data = await r.json();
  if (!r.ok) { alert(data.detail); return; }
  rater = data.rater;
  $("login").hidden = true; $("name").blur(); $("who").textContent = rater;
  $("progress").textContent = data.done + " / " + data.total + " done";
  pair = data.pair; choice = null; $("submit").disabled = true;
  if (!pair) { $("task").hidden = true; $("finished").hidden = false; return; }
  $("task").hidden = false;
  $("question").textContent = pair.question;
  const ctx = $("context"); ctx.innerHTML = "";
  if (pair.context_url) { const img = document.createElement("img"); img.src = withInvite(pair.context_url); ctx.appendChild(img); }
  if (pair.prompt) { const p = document.createElement("p"); p.textContent = pair.prompt; ctx.appendChild(p); }
  side($("left"), pair.left_text, pair.left_url); side($("right"), pair.right_text, pair.right_url);
  $("left").className = "side"; $("right").className = "side";
  const box = $("reasons"); box.replaceChildren();
  pair.reasons.forEach((r, i) => {
    const label = document.createElement("label"), input = document.createElement("input"), key = document.createElement("kbd");
    input.type = "checkbox"; input.dataset.reason = String(i); key.textContent = "abcde"[i];
    label.append(input, " ", key, " " + r); box.append(label, document.createElement("br"));
  });
}
async function submit() {
  if (!pair || !choice) return;
  const reasons = [...document.querySelectorAll("[data-reason]")].filter(c => c.checked).map(c => +c.dataset.reason);
  const r = await fetch("/api/answer", { method: "POST", headers: { "Content-Type": "application/json", ...(invite ? { "X-Invite": invite } : {}) },
    body: JSON.stringify({ rater, pair_id: pair.pair_id, choice, reasons }) });
  if (!r.ok) { alert((await r.json()).detail); return; }
  await load();
}
$("left").onclick = () => pick("left"); $("right").onclick = () => pick("right");
$("submit").onclick = submit;
$("start").onclick = () => { rater = $("name").value.trim(); localStorage.setItem("mils-rater", rater); load(); };
document.addEventListener("keydown", (e) => {
  if (!$("login").hidden) { if (e.target.id === "name" && e.key === "Enter") $("start").click(); return; }
  if (!pair) return;
  if (e.key === "1" || e.key === "ArrowLeft") pick("left");
  else if (e.key === "2" || e.key === "ArrowRight") pick("right");
  else if (e.key === "Enter") submit();
  else { const i = "abcde".indexOf(e.key); const box = document.querySelector(`[data-reason="${i}"]`); if (i >= 0 && box) box.checked = !box.checked; }
});
if (invite || rater) load();
"""
