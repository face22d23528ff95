// The events page: polls the JSON feed every second and puts new rows on top.

const table = document.getElementById("events");
const body = table.tBodies[0];
const feed = table.dataset.feed;
const me = table.dataset.me;
const mine = document.getElementById("mine"); // null unless staff
const count = document.getElementById("events-count");
const empty = document.getElementById("events-empty");
const MAX_ROWS = 500;
let last = 0;
let generation = 0; // bumped when the filter changes: late answers are ignored

const cell = (text, className) => {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (className) td.className = className;
  return td;
};

function row(e) {
  const tr = document.createElement("tr");
  tr.dataset.id = e.id;
  tr.dataset.time = e.time;
  tr.className = `fresh ${e.user_id && e.user_id === me ? "me" : ""}`;
  const time = e.time.replace("T", " ").replace("Z", "");
  tr.append(cell(time.slice(11), "time"));
  tr.lastChild.title = time;
  tr.append(cell(e.event_type, "type"));
  const source = cell("", "source");
  const badge = document.createElement("span");
  badge.className = `badge ${e.event_source}`;
  badge.textContent = e.event_source;
  source.append(badge);
  tr.append(source);
  tr.append(cell(e.username || "—", "user"));
  let page = "";
  if (e.page) {
    try {
      const u = new URL(e.page);
      page = u.pathname.split("/").slice(-1)[0] + u.search;
    } catch {
      page = e.page;
    }
  }
  tr.append(cell(page, "page"));
  tr.lastChild.title = e.page || "";
  // One line; a click shows the whole payload, indented.
  const flat = typeof e.event === "string" ? e.event : JSON.stringify(e.event);
  const code = document.createElement("code");
  code.textContent = flat;
  const td = cell("", "payload");
  td.title = "Click to show the whole payload";
  td.append(code);
  td.addEventListener("click", () => {
    const open = tr.classList.toggle("open");
    code.textContent = open ? JSON.stringify(e.event, null, 2) : flat;
  });
  tr.append(td);
  return tr;
}

// Rows are kept newest first by event time: a batch of browser events is stored a
// moment after the server events of the same seconds, so arrival order is not enough.
function place(tr) {
  let before = body.firstElementChild;
  while (before && before.dataset.time > tr.dataset.time) before = before.nextElementSibling;
  body.insertBefore(tr, before);
}

async function poll() {
  const asked = generation;
  try {
    const url = `${feed}?after=${last}${mine && mine.checked ? "&mine=1" : ""}`;
    const response = await fetch(url, { cache: "no-store" });
    if (response.status === 401) {
      location.reload(); // signed out in another tab: the page sends to the sign-in page
      return;
    }
    if (response.ok && asked === generation) {
      const data = await response.json();
      const rows = data.events.map(row);
      rows.forEach(place);
      if (data.events.length) last = data.events[0].id;
      while (body.rows.length > MAX_ROWS) body.lastChild.remove();
      count.textContent = `${data.total} stored`;
      empty.hidden = body.rows.length > 0;
      setTimeout(() => rows.forEach((r) => r.classList.remove("fresh")), 1500);
    }
  } catch { /* the server is down: try again at the next tick */ }
  setTimeout(poll, 1000);
}

// Only staff have the "Only mine" box: a learner's feed holds only their own events.
mine?.addEventListener("change", () => {
  generation++;
  last = 0;
  body.replaceChildren();
});

poll();
