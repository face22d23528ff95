// The course page: the sequence of units, the lecture video, the PDF textbook and the
// checkpoint problem, each wired to the flask-tracking Logger (window.Logger, loaded by
// the tracking_script() tag before this module runs). See docs/demo.md.

const Logger = window.Logger;
const root = document.getElementById("course");
const cfg = root.dataset;
const $ = (id) => document.getElementById(id);

// --- Logger status ---------------------------------------------------------------

const statsBox = $("logger-stats");
const showStats = () => {
  const s = Logger.stats();
  statsBox.textContent =
    `Logger: ${s.queued} queued · ${s.sent} sent · ${s.retried} retried · ${s.dropped} dropped` +
    (navigator.onLine === false ? " · offline" : "");
};
showStats();
setInterval(showStats, 500);

// --- the sequence: seq_goto / seq_next / seq_prev ----------------------------------

const sequence = Logger.sequence(cfg.sequenceId);
const units = [...root.querySelectorAll(".unit")];
const tabs = [...root.querySelectorAll(".seq-tab")];
const prevUnit = $("seq-prev");
const nextUnit = $("seq-next");
let current = Number(cfg.unit) || 1;

function openUnit(n) {
  if (units[current - 1].dataset.kind === "video") {
    const video = $("lecture");
    if (!video.paused) video.pause(); // as a person leaving the unit would
  }
  current = n;
  units.forEach((unit, i) => { unit.hidden = i + 1 !== n; });
  tabs.forEach((tab, i) => tab.setAttribute("aria-selected", String(i + 1 === n)));
  prevUnit.disabled = n === 1;
  nextUnit.disabled = n === units.length;
  document.title = `${units[n - 1].querySelector("h2").textContent.replace(/^\s*\d+\s*/, "")} · flask-tracking demo`;
  history.replaceState(null, "", `?unit=${n}`);
  if (units[n - 1].dataset.kind === "textbook") openBook();
}

tabs.forEach((tab) => tab.addEventListener("click", () => {
  const n = Number(tab.dataset.unit);
  if (n === current) return;
  sequence.goto(current, n);
  openUnit(n);
}));
prevUnit.addEventListener("click", () => {
  if (current === 1) return;
  sequence.prev(current, current - 1);
  openUnit(current - 1);
});
nextUnit.addEventListener("click", () => {
  if (current === units.length) return;
  sequence.next(current, current + 1);
  openUnit(current + 1);
});

// --- the lecture: load / play / pause / seek / speed_change / stop_video -------------

const video = $("lecture");
const speed = $("speed");
Logger.video(video, { id: cfg.videoId, code: "html5" });
speed.addEventListener("change", () => { video.playbackRate = Number(speed.value); });
video.addEventListener("ratechange", () => { speed.value = String(video.playbackRate); });

// --- the textbook: PDF.js, followed by Logger.book.pdfjs ------------------------------

let bookOpened = false;

async function openBook() {
  if (bookOpened) return;
  bookOpened = true;
  const box = $("book");
  const message = $("book-message");
  box.dataset.state = "loading";
  try {
    // pdf.min.mjs sets globalThis.pdfjsLib, which pdf_viewer.mjs needs: load it first.
    const pdfjsLib = await import(cfg.pdfjs);
    const viewerLib = await import(cfg.pdfjsViewer);
    pdfjsLib.GlobalWorkerOptions.workerSrc = cfg.pdfjsWorker;

    const eventBus = new viewerLib.EventBus();
    const linkService = new viewerLib.PDFLinkService({ eventBus });
    const viewer = new viewerLib.PDFSinglePageViewer({
      container: box,
      viewer: $("book-viewer"),
      eventBus,
      linkService,
    });
    linkService.setViewer(viewer);
    // One book event per page change, whoever changes it (buttons, the page field,
    // links inside the PDF): the adapter follows PDF.js's own "pagechanging".
    Logger.book.pdfjs(eventBus, cfg.pdfUrl);

    const pageField = $("book-page");
    const sync = (page) => {
      pageField.value = page;
      $("book-prev").disabled = page <= 1;
      $("book-next").disabled = page >= viewer.pagesCount;
    };
    eventBus.on("pagechanging", (e) => sync(e.pageNumber));
    eventBus.on("pagesinit", () => {
      viewer.currentScaleValue = "page-fit";
      $("book-pages").textContent = viewer.pagesCount;
      pageField.max = viewer.pagesCount;
      sync(viewer.currentPageNumber);
    });
    eventBus.on("pagerendered", () => { box.dataset.state = "ready"; });
    $("book-prev").addEventListener("click", () => viewer.previousPage());
    $("book-next").addEventListener("click", () => viewer.nextPage());
    $("book-goto").addEventListener("submit", (e) => {
      e.preventDefault();
      const n = Math.round(Number(pageField.value));
      if (n >= 1 && n <= viewer.pagesCount) viewer.currentPageNumber = n;
      else sync(viewer.currentPageNumber);
    });
    addEventListener("resize", () => { viewer.currentScaleValue = "page-fit"; });

    const pdf = await pdfjsLib.getDocument({
      url: cfg.pdfUrl,
      standardFontDataUrl: cfg.pdfjsFonts,
    }).promise;
    viewer.setDocument(pdf);
    linkService.setDocument(pdf);
  } catch (error) {
    box.dataset.state = "error";
    message.hidden = false;
    message.textContent =
      "The textbook needs PDF.js (the pdfjs-dist npm package): run `npm ci` at the " +
      `repository root, or \`make demo\`. (${error})`;
  }
}

// --- the checkpoint: browser events here, server events from the problem actions ------

const form = $("problem");
const problem = Logger.problem(cfg.problemId);
const status = $("problem-status");
const resetButton = $("problem-reset");

// The form's answers, as capa posts them: {input_<answer id>: value}.
const answers = () => Object.fromEntries(new FormData(form));

async function act(action, body) {
  const response = await fetch(`${cfg.problemUrl}/${action}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body || {}),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `${action}: HTTP ${response.status}`);
  return data;
}

function say(text, kind) {
  status.textContent = text;
  status.className = `status ${kind || ""}`;
}

function marks(correctMap) {
  form.querySelectorAll(".question").forEach((q) => {
    const entry = correctMap && correctMap[q.dataset.answerId];
    const mark = q.querySelector(".mark");
    mark.className = `mark ${entry ? entry.correctness : ""}`;
    mark.textContent = entry ? (entry.correctness === "correct" ? "✓ correct" : "✗ incorrect") : "";
  });
}

function shownAnswers(byId) {
  form.querySelectorAll(".question").forEach((q) => {
    const p = q.querySelector(".answer");
    p.hidden = !byId;
    p.textContent = byId ? `Answer: ${byId[q.dataset.answerId]}` : "";
  });
}

async function run(task) {
  form.setAttribute("aria-busy", "true");
  try {
    await task();
  } catch (error) {
    say(String(error.message || error), "bad");
  } finally {
    form.removeAttribute("aria-busy");
  }
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  const given = answers();
  problem.check(given);
  run(async () => {
    const r = await act("check", given);
    marks(r.correct_map);
    $("problem-attempts").textContent = r.attempts;
    resetButton.disabled = false;
    say(r.success === "correct"
      ? `Correct: ${r.grade} / ${r.max_grade}.`
      : `Not quite: ${r.grade} / ${r.max_grade}. Try again.`, r.success === "correct" ? "good" : "bad");
  });
});

$("problem-save").addEventListener("click", () => {
  const given = answers();
  problem.save(given);
  run(async () => {
    await act("save", given);
    say("Your answers were saved.", "");
  });
});

$("problem-show").addEventListener("click", () => {
  problem.show();
  run(async () => {
    const r = await act("show");
    shownAnswers(r.answers);
    say("The answers are shown below each question.", "");
  });
});

resetButton.addEventListener("click", () => {
  problem.reset(answers());
  run(async () => {
    const r = await act("reset");
    form.reset();
    form.querySelectorAll("input[type=text]").forEach((i) => { i.value = ""; });
    form.querySelectorAll("input[type=radio]").forEach((i) => { i.checked = false; });
    marks(null);
    shownAnswers(null);
    resetButton.disabled = true;
    $("problem-attempts").textContent = r.attempts;
    say("The problem was reset.", "");
  });
});

openUnit(current);
