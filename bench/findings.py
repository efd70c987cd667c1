"""The findings section of RESULTS.md: what was profiled, what was found, what was fixed.

Written by hand: the "before" figures come from this benchmark run on the code before the
fixes (commit 2f1a787, then 50f7b06 for the second round, with bench/ copied in), the same day
on the same machine.
"""

FINDINGS = """
## Findings

Profiled with pyinstrument (`python -m pyinstrument -m publisher preview`, and around
`plan`, `outbox.load`, `Dispatcher.run_once` and `render_all`), `python -X importtime`,
cProfile and tracemalloc. "Before" is this benchmark on the code before the fixes (commit
2f1a787 plus `bench/`), run on this machine the same day with a load average of 1.3–2.3;
"after" is a run of the fixed code (07:21 UTC, load 0.1–1.0). Each figure below names its
run: the first round's ran on a slower machine (the loop figure was 116–134 ms, against 61–66 ms
in the run of the table above), so they are larger than the table's.

| # | before the fixes | after | cause found |
|---|---|---|---|
| 1 | 1,541 ms (CPU 1,499 ms); JSON 1,242 ms | 447 ms (CPU 439 ms); JSON 205 ms | SQLAlchemy |
| 5 | 238 ms | 190 ms | (met before) |
| 2 | 60.7 s (plan 34.0 s): 2.75× | 23.4 s (plan 4.4 s): 1.48× | quadratic planner |
| 3 | p99 40.9 s, 24 posts/s (c=1) | p99 28.9 s, 34 posts/s (c=1) | idle between passes |
| 4b | 148 → 152 MiB (peak 152) | 109 → 109 MiB (peak 114) | whole-table copy, TLS |
| 6 | load of 10,000 posts: 79.1 s | 28.4 s (APScheduler: 52.7 s) | quadratic lookup |

Second round (2026-11-30 08:50–09:05 UTC, a faster machine: the loop figure below 66–92 ms
against 116–134 ms in the first), old code (commit 50f7b06) and new run back to back:

| # | before | after | cause found |
|---|---|---|---|
| 3 | p99 13.2 / 13.9 / 12.8 s (c = 1 / 8 / 32) | 11.2 / 8.7 / 9.4 s | waits for a batch |
| 4b | 106 → 110 MiB (peak 116 MB) | 80 → 84 MiB (peak 90 MB) | Alembic; malloc arenas |

### 1. `publisher preview` (target < 0.5 s): met after a fix

- Found: `import sqlalchemy` + `sqlalchemy.orm` + declaring the models was about 60 % of the
  run (`python -c 'import sqlalchemy.orm'` alone took ~0.8 s of CPU in the first round, more than
  the whole target); rich laying out the 30 day tables was most of the rest.
- Fixed: `preview.items_sqlite` reads an SQLite queue with the standard library's `sqlite3`:
  the same query, rows and order as `preview.items` (checked equal on every filter). It is used
  by `publisher preview` for the table and JSON formats only when the queue is an existing
  SQLite file at the current schema; otherwise (another database, no file yet, an older schema
  to upgrade) the command opens the queue with `open_database` as before. `preview.py` imports
  SQLAlchemy only inside `items`; `SCHEMA_HEAD` moved to `publisher/store/migrations/__init__.py`
  (still importable from `publisher.store.db`) so the schema check needs no SQLAlchemy.
- Left: rich's table layout (~0.25 s of CPU in the first round): Vietnamese text takes rich's
  per-grapheme path (`rich.cells.split_graphemes` under `Text.truncate`). Changing it would
  change the output.
- Also found: this environment sets `PYTHONDONTWRITEBYTECODE=1`, so each run recompiles
  publisher's modules: preview then took ~1.3 s, `--help` ~1 s in the first round (548 ms and
  379 ms in the table's run: the "no bytecode cache" notes of rows 1 and 5).
  An ordinary install caches bytecode; the benchmark measures with a cache (a temporary
  `PYTHONPYCACHEPREFIX`, warmed by one run).

### 5. `publisher --help` (target < 0.3 s): met before; trimmed

`cli_queue` imported `subprocess`, `tempfile` and `shlex` at the top for its editor helper; now
inside it (~15 ms). The rest is click, the CLI modules and the config module's dataclasses.

### 2. Plan + render (target ≤ 2× bare Jinja): met after fixes

- Found: planning took longer than rendering. `plan._arrange` (the slogan rotation) sorted every
  message's next occurrence anew at each position (quadratic in the number of slogans: 4,286 per
  channel here) and `nearest_day` sorted all days of the window for every post.
- Fixed, same calendar: `_arrange` keeps the next occurrences in a sorted list updated as picks
  are made and undone (`bisect`), builds a search state only when one has failed;
  `nearest_day` takes the day order from a cache (`_nearest_first`). The plans were compared
  with the old planner's on synthetic campaigns (up to 4,500 posts, with pins, fixed posts and
  preferred times) and 60 random small ones: identical times and reasons; `tests/test_plan.py`
  passes.
- Found: a message was converted from Markdown once per channel although channels share
  conversions (both portals render HTML, Facebook and Zalo both strip it). Fixed:
  `render.markdown_html` and `markdown_plain` are pure and now cached (64 entries). The floor in
  row 2 uses the same cached filters (the stricter comparison); its note gives the uncached one.
- Left: the sandboxed environment, NFC and length checks and the hash of every render cost
  ~30 % over bare Jinja; planning 30,000 posts over a year took ~5 s (first round; in the
  table's run 22 % and 2.3 s; the day search is linear in
  the window).

### Third round (issue 18, item 4): tighter ratios

Targets raised: `publisher preview` ≤ 4× a bare `python -c pass`, plan + render ≤ 1.3× bare
Jinja. Measured 2026-12-07 12:30–13:20 UTC on this machine while four other engineers' work ran
(load average 4–16): wall times there are mostly waiting for a CPU, so the figures below are
CPU time or instruction counts (`valgrind --tool=callgrind`, which does not drift with the
load), old code (main at 4d54651) and new side by side.

Preview (rows 1, 1b): profiled with `python -X importtime` and cProfile by phase (imports,
config, queue read, table).
- Found: rich was most of the table's cost (importing it ~35 % of the run, laying out 30 day
  tables as much again), though a file or a pipe gets plain characters. Fixed:
  `preview.plain_table` writes the same characters without rich for a file (`-o`) or a pipe
  (no terminal, no FORCE_COLOR/TTY_COMPATIBLE): rich's `Table(expand=True)` column widths
  (`ratio_distribute`), ellipsis and padding, byte for byte. It declines (None, then rich
  prints as before) whatever only rich lays out: a post without a time (its reason wraps),
  a line wider than the page, markup brackets, emoji codes, characters outside ASCII, Latin and
  Vietnamese letters and common punctuation. `tests/test_preview.py` checks it equals rich's
  output on the seed campaign and, with hypothesis, on generated text. A terminal still gets
  rich, colours and all.
- Found: `import publisher.cli` imported every command's module (daemon, mail, web, users…).
  Fixed: the command group imports a command's module when it is looked up
  (`cli.common.COMMANDS`, checked complete by `tests/test_cli.py`); `--help` imports them all.
- Found: reading the config imported `email` (mail address check: ~13 % of the remaining
  instructions, with `socket`, `random`, `calendar`), `ssl` (for a `ca_file` that is not set)
  and `difflib` (typo hints); 12 of the config's dataclasses had no docstring, so `dataclass`
  built one with `inspect.signature`. Fixed: a plain address (letters, digits, ._%+- around one
  @) is accepted by a regular expression, checked by hypothesis to be exactly what
  `email.headerregistry.Address` reads back unchanged; anything else still goes through the
  email package. `ssl` and `difflib` are imported only when needed; the dataclasses have
  docstrings.
- Result (instructions): table 1,201 M → 465 M, JSON 580 M → 468 M, `python -c pass` 90 M
  (13.3× → 5.2× the floor's instructions; a process's first instructions cost more time each,
  as the wall and CPU ratios show). 15 interleaved runs each at load 11: table 395 → 150 ms
  of CPU (10.8× → 4.1× the floor's 37 ms), wall 862 → 326 ms median (10.2× → 3.9×); JSON
  235 → 154 ms CPU (6.4× → 4.2×); `--help` 135 → 141 ms CPU (unchanged: it imports every
  command). 11 more at load 4 (13:20 UTC): table wall 423 → 184 ms median (9.8× → 4.3× the
  floor's 43 ms), CPU 284 → 133 ms (8.9× → 4.1×); JSON wall 245 → 201 ms (5.7× → 4.7×).
- Left: what remains is imports: click (~20 % of the run's instructions over the floor),
  the config's 25 frozen dataclasses (Python 3.11 compiles six methods for each: ~0.5–1 ms a
  class, 15–30 ms of self time under `-X importtime`, the largest single item), `tomllib`,
  `zoneinfo`, `sqlite3`, `json`. The ratio is near 4× but above it in these runs; the next
  step would be fewer or cheaper classes on the config's import path.

Plan + render (rows 2, 2b): cProfile of `render_all` and `plan` (600 to 5,000 messages).
- Found: every render prepared its pictures anew: the default cover (every post here) was
  checked (`content.picture`: path resolution, `stat`s, the alt-text library) and prepared
  (`media.prepare`: the picture's 92 kB hashed, its name built) per post: ~30 % of the render.
  Fixed: `media.prepare` keeps what it made for the same file (as read by `read_source`, by
  mtime and size); a `Renderer` checks the default cover once and again only when its file or
  the alt texts change (`stat`), and keeps the last 16 sets of prepared pictures with their
  `media` field while their files are unchanged (a daemon's renderer lives for days:
  `tests/test_render.py` replaces the cover under a renderer and sees the new render).
- Found: `Channel.settings_dict` deep-copied the settings with `dataclasses.asdict`, and
  `context` made the campaign's hashtags (NFD + regex) for every post. Fixed: made once per
  renderer, copied into each post's context (a template still cannot change another's).
- Found: `nearest_day` first looks for the nearest day without another post of the same kind;
  once every day has one (a year of 10,000 messages), that scan of the whole window ran in vain
  for every post. Fixed: the planner counts, per kind, the days without one and skips the scan
  when there are none: same plans (compared with the old planner on 300–5,000 messages, with
  and without unplaced posts; `tests/test_plan.py` passes); 5,000 messages: 0.78 → 0.42 s CPU.
- Result (CPU time, 10,000 messages, same process, load 12): 1.98× in the last full run's
  table; 1.68× after the planner and context fixes, 1.57× after the pictures' (render 14.3 s,
  plan 1.6 s, bare Jinja 10.2 s); 2,000 messages: 1.31–1.53×.
- Left: Markdown (markdown-it, shared by both sides) is most of the floor; over it remain the
  sandboxed environment's attribute checks and size bounds (`template_limits`), NFC and limit
  checks, the hash of every render (JSON + SHA-256), building the contexts (the floor's are
  built before its clock starts) and the plan (~10 % of the total).
- Fourth round (issue 18, row 2b ≤ 1.3×; 2026-12-07, load 4–12, so CPU time and callgrind
  instruction counts, old code = main at fa44b35). Found: the slogan search copied every
  rotation head for every position (`tuple(left.heads)`, quadratic: 4,200 slogans a channel),
  each placement looked its free slot up twice, and the 4,096-entry cache of which local times
  happen missed on every post of a year's calendar. Fixed: the search reads the heads in place
  (they are as the frame saw them whenever it is asked again), `nearest_day` returns the slot
  it found, the cache is per plan for all channels; same plans (old vs new on 3,000 random
  campaigns with pins, fixed and preferred posts, backtracking and the greedy fallback, and
  the bench campaign); 10,000 messages: 8.10 → 3.70 G instructions, 1.0–1.4 → 0.42–0.59 s CPU.
- Found: the hash was the largest cost after Markdown (`json.dumps` quoting every field:
  ~20 µs a render), the default cover was stat'ed three times a post, and the size bounds
  built each filter's argument reader. Fixed: `fields_hash` writes the same canonical JSON
  straight as UTF-8 bytes (escapes made on the bytes; json's own quoting for text with control
  characters; a pinned literal hash and hypothesis against `json.dumps` in
  `tests/test_render.py`): ~12 µs; `render_all` renders in `Renderer.batch()`, which reads
  each set of pictures once a channel (outside a batch every render reads the files again);
  contexts copy parts made once; limits count the NFC field without normalising it again.
  Without Markdown (both sides' filters answered from a dict, 2,000 messages): 67 → 43 µs a
  post, bare Jinja 15 µs.
- Result: callgrind, 1,000 messages: 1.41× → 1.31× (1.34× → 1.24× without SHA-256, which
  valgrind runs ~5× slower than the CPU's SHA instructions); CPU time, 10,000 messages, six
  runs each interleaved: old 1.19–1.84× (median 1.57×), new 1.15–1.30× (median 1.25×).
- Left (a post, natively): the hash ~9 µs (UTF-8 encoding, the control-character check and
  SHA-256, each a pass over the ~4 kB of text), NFC quick checks ~4 µs, the plan ~16 µs, the
  bounded filters, `finalize`, the context, `render` itself and the `Render` ~15 µs, against
  ~230 µs of bare Jinja (Markdown ~90 % of it).

### 3. Dispatch lateness (target p99 < 100 ms): met one post at a time; not 1,000 at once

- A lone post (row 3b) goes out 15–40 ms after its time: APScheduler's one-shot wake at the
  due time, the pass's bookkeeping, the claim, the call, the completion.
- The floor, measured in the same run since the second round (the baseline column of row 3): the
  same 1,000 posts sent by the same adapters to the same sandbox, as many at a time per channel as
  the dispatcher may, all started at once, with no queue, claims or scheduler. Its p99 is 3–6 s at
  every concurrency (4.7 / 5.4 / 6.4 s in the table's run): one post costs a channel 1.3 ms
  (webhook) to 8 ms (Zalo: three calls — create, verify, read back — each reading its token from
  the database) of this process's time, client and in-process sandbox alike under one GIL, so 250
  posts a channel cannot all answer within 100 ms, and more concurrency only adds contention
  (served from a separate process the sandbox gave the same floor within noise: 3.3 s at
  concurrency 1). No dispatcher can beat its floor: the target cannot be met for a burst of 1,000
  on this machine, whatever the design; what is left to judge is publisher's overhead over the
  floor.
- First round: the daemon idled 50 ms between passes while posts were still due; fixed
  (`Daemon._arm` starts the next pass at once after a pass that claimed something).
- Second round, found (cProfile of `Dispatcher.run_once` on 200–400 due posts): a pass
  claimed `concurrency` posts a channel, waited for all their calls, completed each in a
  transaction of its own (fenced `SELECT … FOR UPDATE`, a history row, the audit-chain append,
  an fsync'ed commit), and only then began a new pass (recovery, grace window, heartbeat, next
  wake): a channel whose call had answered waited for the slowest of the batch.
- Fixed: a pass streams (`Dispatcher._stream`). As soon as any call answers, its outcome is
  recorded (one savepoint a post, still fenced on its claim number) and the next due posts of
  every channel with room are claimed, in one transaction; the pass goes on this way for up to
  2 s (`pass_budget`) before the daemon starts a fresh one. A channel's calls no longer wait on
  a batch, and `concurrency` now bounds the calls in flight rather than the posts a pass takes.
  Nothing changed in exactly-once: a claim commits before its call, an outcome after it; the
  chaos and two-daemon tests pass on SQLite and PostgreSQL.
- Result, the old and the new code run back to back on this machine (`--only lateness`, load
  < 1; the machine's speed drifts by up to 1.5× within minutes, see the loop figure, so compare
  each with its own floor): p99 at concurrency 1 / 8 / 32 was 13.2 / 13.9 / 12.8 s (2.8× /
  2.1× / 2.3× its floor) and is 11.2 / 8.7 / 9.4 s (3.7× / 2.1× / 1.1× its floor); in the full
  run of the table, other benchmarks alongside, 15.1 / 11.7 / 11.1 s (3.2× / 2.2× / 1.7×). Clearly
  better with more concurrency, within noise at concurrency 1. Concurrency 32 (128 calls at
  once) can overload the in-process sandbox: in one run of the old code 38 calls ended in
  `ReadError` after sending, were looked up before any resend as designed, and went out 90 s
  late (p99 87 s); in a fresh-clone run of the new code, 2 calls did (max 62 s, p99 8.6 s).
- Left: the work is CPU under one GIL, ~10 ms a post in all: the adapters and sandbox (the
  floor) and the dispatcher's own database work, ~4–5 ms a post (claim: an UPDATE and a history
  row; outcome: an UPDATE, a history row and a hash-chained audit entry; the SQLAlchemy ORM
  around each). Options not taken: claiming ahead of the due time (it narrows the window in
  which an editor's change stops a post), Core statements instead of the ORM in the hot path,
  a shorter GIL switch interval (`sys.setswitchinterval(0.001)` gave ~+30 % throughput in one
  trial), caching the Zalo access token between calls. The shipped campaign never has two
  posts on one channel in the same minute; a lone post meets the target with room to spare.
- Third round (issue 18, item 2: p99 ≤ 1.3× the floor at concurrency 1, 8 and 32; 2026-12-07,
  a 2-core machine shared with four other engineers' work, load average 4–15 throughout, so
  the figures below are noisy and each is named with its load):
  - The sandbox now runs in its own process for both sides (`SandboxProcess` in
    `bench/lateness.py`: `publisher sandbox` as a child, stopped with SIGINT), so its Python no
    longer shares the measured client's GIL.
  - Why floor calls failed (81 of 1,000 at concurrency 32 in the last run; `ReadError` and
    `RemoteProtocolError` on the dispatcher's side): the sandbox's HTTP server listened with
    socketserver's default backlog of 5 connections, and 4 channels × 32 calls open up to 128 at
    once. Fixed: `request_queue_size = 128` (`publisher/sandbox/server.py`). The floor's failures
    are now counted by cause in its row, the ratio is said on what succeeded (and marked so), and
    no cell is ever nan. In the runs of this round at 200 posts, no floor call failed.
  - Found (timing one `publisher sandbox` SMTP session): EHLO took 44 ms every mail. The
    sandbox's SMTP socket came from `socket.create_server` (protocol 0), and asyncio turns
    Nagle's algorithm off only on sockets that say `IPPROTO_TCP`: EHLO's answer, written line
    by line, waited for the client's delayed ACK. Fixed (`_listening` in
    `publisher/sandbox/smtp.py`): 44 → 0.4 ms. It bounded the floor too: the email channel
    (a .docx built and one SMTP session a post, ~40 ms of client CPU) is the slowest channel
    and sets the p99 of both sides at concurrency 1.
  - Profiled (cProfile of the dispatcher's pass thread, 120 posts, concurrency 1, load ~10):
    of 12.4 s of the pass thread's wall time, 2.6 s were spent waiting for answers and the
    rest in its own database work (2.5 s of CPU; the rest waiting for the GIL held by the
    adapters' threads): per post ~20 ms of CPU, against ~13 ms for the calls themselves (the
    floor's client: webhook 1.6, Facebook 4–6, Zalo 6–8, email 40). The claim is the larger part
    (`_claim_one` 26 ms wall a post: the approval checks — fields hash, the audit trail's last
    approval, the pictures' bytes against their hashes, a fresh render of the post — and the
    pictures read a second time for the call), then the outcome (`_apply` 14 ms: the channel's
    state, the history row, the hash-chained audit append) and one fsync'ed commit a round
    (7 ms). The approval checks are the product's guarantee (nothing is sent that is not what
    was approved) and stay.
  - Fixed: a claim reads its pictures' bytes once (checked against their approved hashes, then
    sent; `_missing_picture` takes the files read by `_claim_one`), and a round submits its new
    calls before logging the answers it recorded. `tests/test_dispatch.py`, `test_daemon.py`,
    `test_chaos.py`, `test_outcomes.py` and `test_retry.py` pass.
  - Result: not measurable on this machine today. Old code (main at 4d54651) and new, back to
    back at 200 posts: concurrency 1, p99 1.22× its floor (old, load 15.7) and 1.65× (new, load
    13.2); concurrency 8, 1.38× (old, load 14.2). The ratios swing by more than the change:
    the new code alone at 120 posts, concurrency 1, gave 1.24× (load 13.3) and 3.13× (load
    16.7) minutes apart. At concurrency 32 (400 posts, load 14.2): 1.37×, and no call failed on
    either side (before the backlog fix, 12 of the dispatcher's calls at 200 posts had ended
    in `RemoteProtocolError` and were looked up before any resend).
  - Tried, not kept: a 1 ms GIL switch interval around the dispatcher (`sys.setswitchinterval`;
    5 ms by default) gave 1.54× and 1.37× against the two runs above: not decidable on this
    machine today; worth a trial on a quiet one.
  - Left (why 1.3× is not met at concurrency 1): the dispatcher's work is CPU in the same
    process as the adapters, ~20 ms a post under load against the calls' ~13 ms, and at
    concurrency 1 every call of a channel waits for the round that records its predecessor and
    claims it (one transaction, one fsync). What would close the gap, not done here: claim the
    next post of a channel while its call is in flight (a claimed post not yet called must then
    be released, not looked up, if the daemon stops); Core statements instead of the ORM in the
    claim and the outcome; the render check's result cached by (message, template, config)
    hash; the dispatcher's database work in a process of its own. Lone posts (row 3b, target
    now p99 < 50 ms) are bounded by the slowest channel's call (email, a .docx and an SMTP
    session): measured at load 13, 0.1–0.5 s for every channel (the calls themselves slowed
    6-fold). The sandbox's process is not the cause: 20 lone posts, in-process and
    out-of-process sandbox alternately at load ~10, gave p50/p99 122/614 and 117/588 ms, then
    177/830 and 170/514 ms. The table's run on a quiet machine is the one to judge.
- Third round (issue 18, rows 3 and 3b; 2026-12-07 15:00–16:20 UTC, load 3–12: CPU times and
  statement counts compare, wall times barely). Profiled per stage (the claim, the recording,
  the wake) around lone posts and a 100-post burst. Found: a pass did its bookkeeping (blocked
  channels' checks, lease recovery, the grace window) before claiming, so a lone post's call
  waited for it; a claim read every channel's calls in flight and then asked each channel for
  its due posts; recording an answer read a channel's row twice when it had none, flushed a
  published post twice (its state, then the audit append), and read the audit head again for
  every approval checked. Fixed: a pass claims and starts its calls first — claiming only what
  the bookkeeping would leave claimable (nothing past the grace window or `max_lateness`,
  nothing of a channel waiting for its check), so no outcome changes
  (`tests/test_dispatch.py`: the call has started and a post past its window is still missed
  in the same pass) — then does the bookkeeping, and claims again for a channel a check
  unblocked; one query counts each channel's calls in flight and whether it has a post due, and
  only those channels are locked and read; a round reads its channels' rows once and its claim
  reuses them; a transition flushes its post once with the audit append; the audit head read
  in a transaction is kept for it. Per stage (median): the claim 8.2 → 1.3 ms, recording an
  answer 5.8 → 2.6 ms; SQL statements a post in a burst 22.1 → 16.9; a lone post's call now
  starts 23–32 ms after its time (38–51 ms before, same load). The wake itself is on time
  (APScheduler fires 0.3–0.6 ms after the due time).
- Left (row 3b): lateness is measured when the platform has answered (`published_at`), and a
  quarter of the lone posts go to the PBGDPL desk, whose call alone takes ~120 ms on a quiet
  machine (the message with its .docx ~66 ms, flattening 12 ms, SMTP 36 ms for a 306 kB
  mail): p95/p99 are that call. The row's note now says when the calls began, beside it.
  Webhook 2.5 ms, Zalo 14 ms, Facebook 25–34 ms a bare call.
- Left (row 3): a daemon's own CPU a post is ~10–13 ms (ORM over 16.9 statements) against the
  floor's calls; to be within 1.3× it would have to be ~6 ms. Not done: claiming a channel's
  next post while its call is in flight (the database would have to tell "claimed, waiting"
  from "calling", or two workers' limits together would allow twice a channel's concurrency),
  Core statements instead of the ORM, the database work in a process of its own.

### 4. The idle daemon (targets: ≈ 0 CPU; RSS flat and < 100 MB)

- Idle: met. It sleeps until the next due time or the configured 5 s tick (`[daemon] tick`,
  which is how edits by other processes are noticed); a tick's pass (a few short transactions
  and the heartbeat) costs a few ms of CPU, about 0.2 % of a core. No fast polling (~2 context
  switches a second across all threads). Measured while the other benchmarks ran: the daemon
  is its own process, so the CPU time is its own (a busy machine can only inflate it).
- Memory over a rehearsed month of 3,000 posts, first round: `rehearsal.copy_database` read
  each whole table into a list (tens of MB kept resident) — now 500 rows at a time; each
  channel's `httpx.Client` loaded the CA bundle (~2.4 MB each) — now one shared TLS context.
  Still 105–110 MiB.
- Second round, found (`/proc` samples, imports measured one by one): a rehearsal migrated its
  empty copy with Alembic (9 MiB of imported code, kept for the rest of the process) before
  copying the rows through SQLAlchemy; and the month added ~5–9 MiB that did not come back,
  which `MALLOC_ARENA_MAX=2` removed (glibc gives each thread its own malloc arena, which keeps
  what it freed).
- Fixed: an SQLite queue is copied with SQLite's online backup API (schema and rows page by
  page, no migrations, no row objects), into a side file linked into place only when complete
  (a second daemon starting on the same new file joins the first's rehearsal);
  `tests/test_rehearsal.py` checks it equals the row-by-row copy, which other databases still
  use. `publisher run` asks glibc for two malloc arenas (`mallopt(M_ARENA_MAX, 2)`, unless the
  environment sets `MALLOC_ARENA_MAX`).
- Result, old and new code the same day on this machine: 106 → 110 MiB (peak 110 MiB =
  116 MB; quarters 110 / 110 / 110 / 110) became 80 → 84 MiB (peak 86 MiB = 90 MB; quarters
  85 / 86 / 86 / 84): met. The verdict now compares the peak in MB (10^6 bytes) as the target
  is written; earlier rounds compared MiB. Left: imported code, ~72 MiB (SQLAlchemy 23 with
  its compiled extensions, cryptography 7 for the Zalo token store, httpx 6, the rest of the
  CLI). Measuring note: a child's `ru_maxrss` includes the parent's image before `exec`, so the
  peak is read from `/proc/<pid>/status` (VmHWM).
- Third round (issue 18; 2026-12-07): the full run of 14:23 UTC found 121 → 181 MiB (peak 214
  MB) and 191 of 3,000 posts missed (3,000 published, 83 → 90 MiB, on 2026-12-06). Two things
  had come in between: the PBGDPL portal became a desk reached by mail (each of its 750 posts
  a .docx and an SMTP session; its replies read by IMAP), and the daemon reads figures.
- Found (py-spy of the rehearsal, 1,000 posts in 40 s): the reading rounds, one a real second,
  read every post due — each post once a campaign day, that is every 4 real seconds in a
  2-minute month: hundreds of reads a second at the month's end, each recorded in a
  transaction of its own (SQLite's write lock, an fsync), beside the dispatcher. With figures
  off the same month published 3,000/3,000; with them, 138 missed. And each hand-off's
  document: python-docx's objects refer to each other in cycles, so a finished document's
  parsed XML (~5 MB of lxml's memory) lived until a full collection — malloc's in-use memory
  swung between 30 and 72 MB and the heap stayed at its high point; building one cost ~37 ms
  of CPU, ~13 of them parsing python-docx's template again.
- Fixed: a round of readings spends at most a tenth of the time between two rounds (campaign
  time: 6 minutes of an hourly round; 0.1 s of a rehearsal's second), posts never read first,
  then the ones read longest ago, 20 readings recorded a transaction; the rehearsal's last
  reading, once its daemon has stopped, still reads every post (`tests/test_insights.py`: the
  budget, the order, the batches). The README's rehearsal of 72 posts still reads them daily
  (549 readings on 30 days) and ends with every post's figures. A document is built from a
  copy of one parsed template and its objects are cleared once saved (`tests/test_email_docx.py`
  fails without it); python-docx is imported on first use; a rehearsal talks to its sandbox
  through `sandbox.client`, without the platforms' modules; httpx's command-line client (rich's
  syntax highlighting, pygments) is not imported (`tests/test_daemon_imports.py`). Imports of
  the production daemon 77.9 → 67.4 MB (+6.4 MB once its first mail goes out).
- Left: imported code is most of the RSS (~76 MB for a rehearsal: SQLAlchemy ~27, python-docx
  and lxml 6.4, cryptography 6, the render chain ~8, trio 4 — installed for selenium, imported
  by httpcore when present — and ~28 MB of shared libraries' pages), and ~15 MiB of glibc heap
  fragmentation over the month: memory in use stays at 30–38 MB while the heap grows from 40 to
  60 MB (threads, SSL contexts and httpx clients stay flat: 12, 1, 3); neither
  `MALLOC_MMAP_THRESHOLD_` (128K, 32K) nor `malloc_trim` every 5 s kept it down.

### 6. The baseline

- APScheduler commits every `add_job` on its own (10,000 fsyncs) and unpickles every job on
  restart; by default it drops every job that fell due more than 1 s before it was back up
  (`EVENT_JOB_MISSED`, then removed): all 600 posts of the outage are lost. publisher publishes
  them on restart, oldest first, within its 2 h grace (a `FakeClock` dispatcher here).
- publisher's "schedule" is a whole `publisher load` (read files, check the text, render,
  plan, insert posts, history and audit rows in one transaction). Found in its profile: a
  list membership test (`(d, p) not in movable`) made the load quadratic — now a set of keys;
  and the new legacy-encoding check (`vietnamese._line_encoding`) scored every line of every
  file even when the line could not be legacy text — the score is now computed only for lines
  that qualify (same results; `tests/test_vietnamese.py` passes).

### 7. The web app under load (target: p99 of the calendar and of approve < 150 ms, SQLite): missed

- Method (`bench/web.py`): `create_app` served by uvicorn (one process, its defaults) on a copy
  of a campaign of 399 posts (every other one approved, which a rehearsal daemon publishes
  meanwhile against the sandbox: `run --rehearse 120s`, so ~2 posts a second, steadily rather than
  in one burst); 20 board members, each logged in through `/login` (a session cookie each) and
  holding an API token, driven by 20 httpx async clients in the benchmark's process (which also
  serves the sandbox). Each member in turn: `GET /`, `GET /api/v1/posts?limit=50`,
  `GET /api/v1/me` (the floor: a token lookup, nothing else) and, while drafts last, one approval,
  by the form or by the API alternately. Paced (0–2 s, 1 s on average, before each request; the
  judged figures) for 30 s, then saturated (no pause: 20 requests always in flight) for 15 s.
  `create_app` does not mount the API yet (the line is a comment in `publisher/web/app.py`): the
  benchmark's server mounts `create_api` at /api/v1 itself.
- Alone (in-process TestClient, one request at a time, 399 posts, loaded machine): before the fix
  below, `GET /` took 130–170 ms (188 KB of HTML); `GET /api/v1/posts?limit=50` 60–90 ms
  (160 KB); `GET /api/v1/me` 6–7 ms.
- Found (cProfile of the calendar's handler): the page read the queue twice through the ORM,
  every post with its rendered text and its JSON fields decoded: the month's grid (73 ms) and
  the "unplanned" strip, which read the whole queue again to keep the posts without a time
  (77 ms; none here). Fixed: `preview.items(bare=True)` defers the text and fields (a card shows
  neither) and `unplanned=True` filters `due_at IS NULL` in SQL: 29 ms and 0.8 ms; the page
  alone ~80 ms, of which about 50 ms (by difference) is the template for 399 cards, the session
  lookup and the middleware. `tests/test_web.py`, `test_preview.py` and `test_api.py` pass on
  SQLite and PostgreSQL. Under load, before the fix (PostgreSQL, load average ~4): calendar p50
  1,168 ms, p99 4,082 ms, 11 requests/s paced and 15/s saturated; after: the table (another
  moment of a shared machine: compare with care).
- In the table's run (2026-12-06 23:13–23:24 UTC; load average 4.8 at its start, 2.5 when the web
  part began): on SQLite, paced, calendar p99 1,469 ms and approve p99 599 ms (form) / 898 ms
  (API), against a floor p99 of 624 ms; on PostgreSQL 746 ms and 265 / 820 ms against 276 ms. No
  error answers. These p99s swing by 2× between runs on this shared machine (an earlier run of
  the same code, load ~2–4: SQLite calendar p99 1,171 ms, floor 581 ms); the floor swings with
  them.
- Also seen in this run, not item 7: item 4b now peaks at 113 MB (86 MiB = 90 MB on 2026-11-30):
  the daemon imports more since the merges (the web app, the API, the message catalog) — not
  looked into here. It had been reporting "0 published" since Vietnamese became the CLI's
  default (the benchmark parsed English): the benchmark now runs the CLI with PUBLISHER_LANG=en.
- What stands between (the floor says it): `/api/v1/me` alone takes 6–7 ms, but under this load
  its p99 is itself far over 150 ms (see the table), on SQLite and PostgreSQL alike. The time
  is spent waiting for the server's CPU, not the database: one uvicorn process runs every
  handler's Python under one GIL, and a member's round (calendar ~80 ms, list 60–90 ms, floor,
  approval) costs ~0.2 s of CPU every ~4 s, so 20 members ask for ~1 s of CPU a second from a
  process that has at most one core — on a 2-core machine shared with the publishing daemon, the
  load generator with its sandbox and other engineers' tests (load average in "The machine").
  Saturated, the server answers ~15–20 requests a second.
- Left then (done in the second round below): the API's list read and converted every
  matching post, text included, then returned 50. Still left: the calendar renders all of a
  month's cards in one page (399 here); more than one server process (`uvicorn --workers`),
  which this 2-core machine cannot show fairly. The SQLite settings were not the cause (the
  read-only floor waits as long); `synchronous=FULL` stays, for the claims' durability.

#### Second round (issue 18, item 3; 2026-12-07, a shared machine: load average 4–18)

- The load generator now runs in its own process (`python -m bench.web load`: the 20 members'
  httpx clients on one event loop), apart from the server (uvicorn, `python -m bench.web
  serve`), the daemon (`publisher run --rehearse`) and the benchmark's own process (which serves
  the sandbox): before, the clients shared a GIL with the sandbox, and their own waits were
  counted in the latencies. Counted apart in each row: answers other than the expected one (by
  status), requests the server dropped, and lock errors — lines of the server's and the
  daemon's logs saying SQLite's "database is locked" or PostgreSQL's serialization failure,
  deadlock or lock timeout. The web app now logs a database error with the driver's first line
  (`app.database_reason`: "OperationalError: database is locked"), never its DETAIL (which may
  quote values). A second floor, `GET /static/app.css` (no database, no session), sits beside
  `GET /api/v1/me`. PostgreSQL's rows are judged too (the issue asks both).
- Profiled with py-spy (`py-spy record -f raw` around an in-process server answering the
  benchmark's requests on the benchmark's queue of 399 posts; stacks filtered by handler).
  The calendar (`GET /`, ~41 ms alone on a quiet moment) spent ~45 % in `preview.items`
  building ORM objects (identity map, instance state per row) and ~34 % in the template, half
  of that in MarkupSafe escaping 12 texts of each of 399 cards; the API's list (~30 ms) read
  all 399 posts with their text to return 50.
- Found next, once the rows were columns: reading a card's pictures (`fields->>'media'`, the
  SQL JSON extraction) makes the database parse each post's whole fields, ~10 KB of JSON: 15 of
  the 18 ms the query then took on SQLite (`EXPLAIN`-free check: the same select without that
  column took 1.4 ms).
- Fixed (`tests/test_web.py`, `test_api.py`, `test_calendar_page.py`, `test_preview.py`,
  `test_web_browser.py` pass, on SQLite and PostgreSQL; the calendar's and the list's HTML
  compared byte for byte with the old code's on the benchmark's queue: identical but for the
  session's CSRF token):
  `preview.items` selects columns, not ORM objects; a card's `media` is kept by the post's
  `render_hash` (the SHA-256 of all its rendered fields, so the hash names the value; read
  once per render, then only for posts re-rendered since); `views._cover` keeps a card's cover
  per `media` and language; `render.card_html` keeps each card's HTML by everything it shows
  (`_card.html`), so a page of 399 cards escapes only the cards that changed; the API's list
  (`preview.page`) orders three narrow columns of every matching post and reads only the page's.
- Alone (in-process, one request at a time, the old and the new code back to back on the same
  queue, load average ~14–18, minimum of 10): the calendar 96 → 21 ms, `GET /posts` 83 → 27 ms,
  `GET /api/v1/posts?limit=50` 55 → 10 ms; the floor `GET /api/v1/me` ~3–4 ms (both).
- Approve (form or API, ~17–24 ms alone) is mostly its commit (`synchronous=FULL`: an fsync,
  ~30 % of its samples), the audit chain's head lookup and the post's history: I/O that
  releases the GIL, not the CPU that queues other requests. Left as it is.
- Under load (`python -m bench --only web`, full sizes, the code before — commit 8c53e72, this
  benchmark — and after, back to back; 2026-12-07 13:02–13:19 UTC, load average 8.6–13.3: every
  latency, floors included, waits for a CPU, so read the CPU and the rates): the server's CPU
  time per request, paced, 29.6 → 15.6 ms on SQLite and 22.7 → 14.6 ms on PostgreSQL
  (saturated 29.6 → 17.0 and 28.6 → 15.2 ms); saturated answers a second 22 → 51 (SQLite) and
  14 → 37 (PostgreSQL) in the first pair of runs, 29 → 26 and 23 → 38 in the second; paced
  calendar p50 368 → 241 ms (SQLite) and 227 → 126 ms (PostgreSQL), p99 2.0 → 0.8 s and
  0.8 → 0.6 s, beside a static file's p99 of 0.1–1.7 s in the same runs. No error answer,
  no dropped request and no lock error in any of these runs, on either database.
- A calmer moment (13:22–13:25 UTC, load average 2.3 → 3.8), the new code alone: on SQLite,
  paced, calendar p50 45 ms, p99 166 ms (the table of 2026-12-06, load 1.3: 100 / 489 ms); the
  form's approve p99 155 ms, the API's list 143 ms, the API's approve 263 ms; floors p99
  128 ms (`/api/v1/me`) and 73 ms (static); server CPU 13.5 ms a request; saturated 75
  answers a second (22 then). On PostgreSQL: calendar 43 / 295 ms (75 / 345 then), approve
  89 ms (form) and 173 ms (API), list 104 ms; floors 58 and 40 ms; 76 a second saturated
  (33 then). No error, dropped request or lock error. So the target is within reach and not
  yet met on this machine: the misses are the rare slow answer (1 or 2 in 50–130) queued
  behind others on one process's GIL, as the floors' own p99s show. A quiet-machine run
  decides it.
- The session check is a digest lookup (no Argon2 per request; `seen_at` written at most once a
  minute); the Jinja environment and its compiled templates are made once per process.
- Left: one uvicorn process (its GIL) serves everything; several workers would need the login
  form's signing secret (`app.state.secret`, random per process) shared between them; the
  calendar still holds every card of a month.

### 8. Scale-out on PostgreSQL (issue 18, item 1): what bounds the ratio here

Measured on 2026-12-07 12:36–13:01 UTC with smaller sizes than the full run (the machine was
shared by five engineers: load average 4–15, so throughput and lateness figures here are far
below what a quiet machine gives; the CPU and SQL figures per post are what to compare).

- Method: `bench/scaleout.py`. Posts due at one second on N channels (concurrency 1), a backlog,
  so throughput is capacity (spread over a minute, 2,000 posts arrive at 33/s and one daemon
  keeps up: the ratio would say nothing). 1, 2 and 4 daemon processes (the real `Daemon` and
  `make_dispatcher`, each its own worker) share a fresh PostgreSQL schema; the sandbox runs as
  `publisher sandbox` processes (channels sharded across them); duplicates are counted from the
  sandboxes' records (`GET /_sandbox/records`). Each daemon reports its CPU time and the SQL
  statements it sent from ready to done; PostgreSQL's CPU is sampled from `/proc`.
- Duplicates: 0 in every run (600/600, 300/300, 200/200 published; the sandboxes' records held
  exactly one item per post). Under this load the sandbox sometimes closed a kept-alive
  connection mid-request (`RemoteProtocolError`); the dispatcher looked the post up, found it
  missing or present, and sent it at most once: the claims, lease and fence held with 4 daemons.
- CPU per post, 600 posts on 60 channels, 2 sandbox processes (load 8–13): 1 daemon: daemon
  20 ms, sandbox 12 ms, PostgreSQL 6 ms; 4 daemons: daemons 44 ms, sandbox 12 ms, PostgreSQL
  22 ms. The whole chain costs 38–78 ms of CPU per post, so two cores cap it at 25–50 posts/s
  whatever the number of daemons: on this machine 4 daemons cannot be 3× one (measured: 6.8,
  5.0 and 5.3 posts/s for 1, 2 and 4 daemons with the machine saturated by others).
- Why a daemon's CPU per post grows with the number of daemons: SQL statements per post, 300
  posts on 60 channels: 17.7 with 1 daemon, 38.6 with 4. One daemon records many answers in one
  round (one transaction: the fence's `SELECT … FOR UPDATE`, the channel states, the calls in
  flight, the claims of the channels with room); with 4 daemons each round records fewer answers,
  so these per-round statements (and each daemon's claim queries on the same freed channels,
  of which SKIP LOCKED leaves it nothing) are paid more often per post. Breakdown (200 posts, 4
  daemons, per post): post selects 3.6 (claims per channel, fence, recovery), channel_state 2.8,
  audit head 2.1, post_event inserts 2, then one each of media_file, audit, the two post
  updates. Left: claiming for several channels in one statement, and giving each daemon a
  preferred share of the channels, would cut the per-round statements; not done here.
- Fixed: a claim read its pictures' bytes twice (once to check them against the approval, once
  to send them): a 90 kB cover over the network from PostgreSQL, per article. Profiled with yappi
  (all threads; `PUBLISHER_BENCH_PROFILE=DIR` writes each daemon's profile and statement counts
  there), `media.files` was ~19 % of a daemon's CPU (1,200 reads for 600 posts); now the claim
  reads them once and checks and sends the same bytes (1 read a post: the statement counts
  above). `tests/test_dispatch.py::test_a_claim_reads_its_pictures_bytes_once` (SQLite and
  PostgreSQL).
- Full size, 4 daemons only (2,000 posts on 200 channels, 2 sandbox processes, 13:09–13:15 UTC,
  load average 8–12): 2,000/2,000 published, 0 duplicates in the sandboxes' records, 8.0
  posts/s (lateness p50 81 s, p99 243 s: the machine was saturated by others), 25 SQL
  statements per post; CPU per post: daemons 47 ms, sandbox 16 ms, PostgreSQL 24 ms (87 ms
  a post: two cores cap the chain at ~23 posts/s). The run took 347 s on that machine; on a
  quiet one the item's three runs and its floor should take a few minutes (not measured here).
- With a core per process (the ratio per core): the daemons' posts per CPU-second fall from the
  1-daemon figure to the 4-daemon figure (row 8b's note), so with a core for each daemon and
  enough for the sandbox and PostgreSQL the ratio would be 4 × that fraction: about 1.8× from the
  CPU figures above (20 → 44 ms a post), to be read from the quiet machine's full run.

### The previous full run (2026-12-07 16:27–16:44 UTC, fresh clone of 8f33015, load 0.5 → 0.5)

- Met since the previous full run (14:23 UTC, 2653380): plan + render 1.38× → 1.29× bare Jinja
  (plan 1.36 → 0.57 s); 4b published 2,809 → 3,000 of 3,000, RSS 121 → 181 MiB (peak 214 MB)
  → 116 → 131 MiB (peak 138 MB; still over 100 MB and 15 MiB of growth: imports and heap
  fragmentation, item 4 above); the idle daemon 98 → 86 MiB; scale-out 50 → 52, 56 → 69 and
  46 → 71 posts/s for 1, 2 and 4 daemons (SQL statements a post 17.9 → 12.3; the chain's CPU
  41.9 → 25.2 ms a post): 0.91× → 1.37×, and per core 2.41× → 4.58× (the daemons' posts per
  CPU-second no longer fall with more daemons: 79 → 90), with 0 duplicates in every run.
- Missed, and what bounds each: the burst (row 3) 1.34 / 1.53 / 1.53× its floor (the
  dispatcher's ~10–13 ms of ORM CPU a post beside the floor's calls, item 3 above; this
  machine was also slower than at 14:23: the loop took 96–104 ms against 61–81); lone posts
  p99 167 ms, p50 26 ms: their calls began p50 11 ms after their time, and p95/p99 are the
  PBGDPL desk's own call (~120 ms: its .docx and its SMTP session) and one late start (154 ms)
  not yet explained; scale-out's 3× needs a core per daemon (4.58× per core).
- The whole run took 1,005 s (target < 15 min): item 4's month is ~6.5 min of it, of which
  ~4 min come after the month, in the rehearsal's last reading of figures: each of 750 Zalo
  articles is looked for in `article/getslice` (getdetail's totals are not documented), 10 a
  page and up to 30 pages, so ~15,000 requests. Fixed after this run: a round of readings
  reads each getslice page once and shares it among its articles (`begin_round`/`end_round`,
  called by the collector; `tests/test_metrics_read.py`, `tests/test_insights.py`): the same
  month then took 157 s from start to exit instead of ~383 s (one run, 16:48 UTC, with the
  test suite running beside it — its 534 missed posts are that load's, the quiet run above
  published 3,000/3,000 — so not a table figure; the next full run measures it).

### Issue 18, last round (2026-12-07 17:40–19:10 UTC, a quiet machine: load < 1 between runs)

Three full runs on fresh clones: 84c463a (17:42, 999 s), bee9036 (18:25, 806 s) and the
table's (86f41ab, 18:44–18:56, 686 s).

- The month's last reading (the Zalo pages shared within a round, the round before): item 4's
  stage of the run, mostly the month, now takes 139 s (the month alone ~383 s before), and
  3,000/3,000 were published in each run.
- The run's own time, found (timing each step of `bench/scaleout.py` and `bench/lateness.py`):
  every `publisher sandbox` process ran 10 s after its Ctrl-C and was then killed, one after
  another: the benchmark was started as a background job, whose SIGINT a shell sets to ignored,
  and Python leaves an ignored SIGINT ignored, so the sandbox never heard it (run in the
  foreground, the same stop took 0.1 s). That was ~20 s a scale-out run and 10 s a lateness
  run, and a real defect: `kill -INT` did nothing to a sandbox started by a script. And every
  run loaded and approved its campaign anew: 16–19 s for 2,000 posts on PostgreSQL (`approve`
  appends the audit chain post by post, ~7 statements a post: cProfile), 4.5 s for 1,000 on
  SQLite. Fixed: `publisher sandbox` sets its own SIGINT and SIGTERM handlers (both stop it
  cleanly, exit 0; `tests/test_cli_channels.py` starts it with SIGINT ignored, as a background
  job is); the benchmark stops its sandboxes together within one 10 s deadline and logs a kill;
  each benchmark loads and approves its campaign once and copies the queue for every run (the
  SQLite file; the PostgreSQL rows, table by table, sequences reset) — the SQLite copies' posts
  were checked equal to fresh loads' at concurrency 1, 8 and 32; the PostgreSQL copies only by
  their runs (2,000/2,000 published, 0 duplicates). Lateness 297 → 166 s, scale-out 297 →
  136 s.
- The sandbox (py-spy of the sandbox process under a 400-post burst): 12–13 % of its time went
  to decoding each uploaded picture to its last pixel (Pillow), though a campaign uploads the
  same cover again and again; 20 % to parsing each 300 kB hand-off mail. Fixed: pictures
  accepted are remembered by their bytes' sha256 (other bytes are decoded and judged as
  before; `tests/test_sandbox_media.py`). The sandbox's CPU a post in the scale-out: 12.2–14.5
  → 6.0–6.2 ms, which lifts the floors (the bare adapters' rates: 96–113 → 155–158 posts/s in
  the scale-out) and so the dispatcher's ratios against them.
- Lone posts (row 3b), the late start left open: a post due while the daemon's pass was
  waiting for another channel's call was claimed only when that call answered, or at the
  pass's 2 s budget — the pass did not hear the waker (the 154 ms start: the first hand-off
  mail, which imports python-docx, outlasted the next post's time). In production, a slow call
  to one platform (its timeout is 30 s) held up every other channel's due post for up to 2 s.
  Fixed: the waker's jobs poke the dispatcher (`Daemon.alarm` → `Dispatcher.poke`), a pass
  waiting for calls claims at once what has fallen due, and, whenever it starts waiting, asks
  the daemon to arm the wake-up for the next post due meanwhile (`on_stream`).
  `tests/test_daemon.py`: one channel's call takes 3 s, a post on another due 0.6 s later goes
  out < 1 s late (1.45 s late before the fix); `tests/test_dispatch.py`: a poke claims and sends
  while the slow call is in flight. The calls' start, p99: 154 ms (16:44) and 56 ms (17:42)
  before the fix, 31 and 27 ms after.
- Row 3b has a floor now: the same 40 posts through the same adapters, each sent at its own
  time, no queue (`floor(..., spacing=0.25)`), with each channel's p99. The desk's call is the
  floor's p99, ~100 ms (in the table's run: Facebook 19, Zalo 13, the STP portal 26, the
  PBGDPL desk 102 ms): its .docx (~40 ms), flattening (~14 ms) and one SMTP session in which
  the sandbox parses and records the 300 kB mail (~40 ms; cProfile of the adapter). No
  dispatcher can bring a p99 of 40 posts below the slowest channel's own call: with a desk
  among the channels, p99 < 50 ms cannot be met; what the dispatcher adds is the start (p99
  27 ms after the due time) and the CPU its bookkeeping takes from the call meanwhile.
- Plan + render: its ratio swung with the machine (1.29×, 1.30×, 1.54× in three full runs the
  same day: a single run of each side, the two a minute apart). Each side now runs twice,
  alternately, and the faster run of each counts (the note gives all four).
- Preview (rows 1, 1b: 4.1× and 4.2×; 3.4–3.9× in the day's other runs): imports with a
  bytecode cache, averaged over 5 runs of `python -X importtime -m publisher preview`:
  `publisher.config.model` 20 ms of its own (24 frozen dataclasses: each generates and `exec`s
  six methods), click 21 ms, the rest of publisher ~10 ms; the floor (25 ms) is the
  interpreter and `site` (with the editable install's finder, 15 ms). Nothing left to cut but
  the config's dataclasses, which every command needs.

### The table's run (2026-12-07 18:44–18:56 UTC, fresh clone of 86f41ab, load 0.6 → 2.4)

- The whole run took 686 s (< 15 min: met).
- Met: plan + render 1.24× bare Jinja; `--help` 99 ms; the idle daemon 0.25 % of a core; the
  outage (0 lost against 600); the web app (all eight rows, SQLite and PostgreSQL, p99 29–91
  ms, no error, no lock error); 0 duplicates in every scale-out run.
- Missed, and what bounds each:
  - Preview 4.1× / 4.2× (102 / 104 ms against 25 ms): imports, above.
  - The burst (row 3) 1.41 / 1.42 / 1.48× its floor: the dispatcher's ~10 ms of CPU a post
    (row 8's daemon CPU; 12.2 SQL statements a post through the ORM) beside the floor's calls,
    in the same process (item 3, third round). The faster sandbox lowered the floor more than
    the daemon (scale-out: daemon 10.1 ms a post, sandbox 6.2, PostgreSQL 2.4).
  - Lone posts p99 155 ms, p50 21 ms, against their floor's p99 102 ms: the PBGDPL desk's own
    call, above; the calls began p99 27 ms after their time.
  - 4b: 117 → 134 MiB (peak 140 MB): imported code (~76 MB) and ~15 MiB of heap fragmentation
    over the month (item 4, third round); 3,000/3,000 published.
  - Scale-out 1.21× (73.6 → 89.1 posts/s): the whole chain costs 20 ms of CPU a post, two cores
    cap it at ~100 posts/s; with a core per daemon, 3.69× (the daemons' posts per CPU-second
    99 → 91).
"""
