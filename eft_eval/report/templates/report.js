/* eft-eval report: the sample browser. Plain JS, no framework, no network.
 * The data is one JSON block (#report-data); rows are built on demand, one page at a time, and
 * every piece of model or user text goes in through textContent, never as HTML. */
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("report-data").textContent);
  var PAGE_ROWS = 50, PAGE_GROUPS = 20;
  var judges = DATA.judges.map(function (j) { return j.name; });
  var state = { runs: null, preds: [], text: "", view: "list", sort: null, desc: false, page: 0, open: {} };
  var tbody = document.getElementById("sample-rows");
  if (!tbody) { return; }  // a report without runs (human study only)

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }
  function runLabel(id) { return DATA.runs[id].label; }
  function fmt(x) { return x === null || x === undefined ? "-" : String(Math.round(x * 1000) / 1000); }

  /* ---- filter expressions: "harm > 50", "failed", "helpfulness is abstained", joined by and/commas ---- */
  function resolveJudge(name) {
    var lower = name.toLowerCase();
    for (var i = 0; i < judges.length; i++) { if (judges[i].toLowerCase() === lower) { return judges[i]; } }
    var target = DATA.aliases[lower];  // a former name, e.g. harmlessness -> harm
    if (target && judges.indexOf(target) >= 0) { return target; }
    for (var old in DATA.aliases) {  // the new name typed for a report of old runs
      if (DATA.aliases[old] === lower && judges.indexOf(old) >= 0) { return old; }
    }
    return null;
  }
  var COMPARE = {
    ">": function (a, b) { return a > b; }, ">=": function (a, b) { return a >= b; },
    "<": function (a, b) { return a < b; }, "<=": function (a, b) { return a <= b; },
    "=": function (a, b) { return a === b; }, "==": function (a, b) { return a === b; },
    "!=": function (a, b) { return a !== b; }
  };
  function parseFilter(text) {
    var clauses = text.split(/\s*(?:,|&&|\band\b)\s*/i).filter(function (c) { return c.trim() !== ""; });
    var preds = [], m;
    for (var i = 0; i < clauses.length; i++) {
      var clause = clauses[i].trim();
      if (/^(truncated|cut off)$/i.test(clause)) {
        preds.push(function (s) { return s.f === "length"; });
      } else if ((m = /^(failed|abstained|scored)$/i.exec(clause))) {
        preds.push(anyStatus(m[1].toLowerCase()));
      } else if ((m = /^([\w.-]+?)\s*(?:\s+is\s+|:|=|\s)\s*(failed|abstained|scored)$/i.exec(clause))) {
        var j1 = resolveJudge(m[1]);
        if (!j1) { return { error: unknownJudge(m[1]) }; }
        preds.push(judgeStatus(j1, m[2].toLowerCase()));
      } else if ((m = /^([\w.-]+?)\s*(>=|<=|!=|==|=|>|<)\s*(-?\d+(?:\.\d+)?)$/.exec(clause))) {
        var j2 = resolveJudge(m[1]);
        if (!j2 && /^(length|tokens)$/i.test(m[1])) { preds.push(responseLength(COMPARE[m[2]], parseFloat(m[3]))); continue; }
        if (!j2) { return { error: unknownJudge(m[1]) }; }
        preds.push(judgeScore(j2, COMPARE[m[2]], parseFloat(m[3])));
      } else {
        return { error: "cannot read \u201c" + clause + "\u201d: write e.g. \u201c" + (judges[0] || "harm") +
          " > 50\u201d, \u201cfailed\u201d or \u201c" + (judges[0] || "harm") + " is abstained\u201d" };
      }
    }
    return { preds: preds };
  }
  function unknownJudge(name) { return "no judge \u201c" + name + "\u201d in this report; judges: " + judges.join(", "); }
  function anyStatus(status) {
    return function (s) { for (var k in s.j) { if (s.j[k][0] === status) { return true; } } return false; };
  }
  function judgeStatus(judge, status) { return function (s) { return !!s.j[judge] && s.j[judge][0] === status; }; }
  function responseLength(op, value) { return function (s) { return s.n !== undefined && op(s.n, value); }; }
  function judgeScore(judge, op, value) {
    return function (s) { var v = s.j[judge]; return !!v && v[0] === "scored" && v[1] !== null && op(v[1], value); };
  }

  function matches(s) {
    if (state.runs && !state.runs[s.r]) { return false; }
    for (var i = 0; i < state.preds.length; i++) { if (!state.preds[i](s)) { return false; } }
    if (state.text) {
      if (s._t === undefined) { s._t = (DATA.prompts[s.q] + "\n" + s.a).toLowerCase(); }
      if (s._t.indexOf(state.text) < 0) { return false; }
    }
    return true;
  }

  function sortKey(s) {
    var key = state.sort;
    if (key === "run") { return s.r; }
    if (key === "doc") { return s.d === null ? -Infinity : s.d; }
    if (key === "len") { return s.a.length; }
    if (key === "tokens") { return s.n === undefined ? null : s.n; }
    var v = s.j[key.slice(6)];
    return v && v[0] === "scored" && v[1] !== null ? v[1] : null;
  }
  function sorted(list) {
    if (!state.sort) { return list; }
    var sign = state.desc ? -1 : 1;
    return list.map(function (s, i) { return [sortKey(s), i, s]; }).sort(function (a, b) {
      if (a[0] === null || b[0] === null) { return a[0] === b[0] ? a[1] - b[1] : (a[0] === null ? 1 : -1); }
      return a[0] === b[0] ? a[1] - b[1] : (a[0] < b[0] ? -sign : sign);
    }).map(function (t) { return t[2]; });
  }

  /* ---- rendering ---- */
  function scoreCell(v) {
    var td = el("td", "num score");
    if (!v) { td.textContent = "-"; return td; }
    if (v[0] === "scored") { td.textContent = fmt(v[1]); } else { td.appendChild(el("span", "status " + v[0], v[0])); }
    return td;
  }
  function lengthCell(s) {  /* tokens, and why the response ended (a stop string shown quoted) */
    var td = el("td", "num length", s.n === undefined ? "-" : s.n);
    if (s.f !== undefined) {
      var why = s.f === "stop" || s.f === "length" ? s.f : JSON.stringify(s.f);
      td.appendChild(el("div", "finish" + (s.f === "length" ? " cut" : ""), why));
    }
    return td;
  }
  function judgmentBlock(name, v) {
    var box = el("div", "judgment");
    var head = el("strong", null, name + ": ");
    box.appendChild(head);
    box.appendChild(v[0] === "scored" ? document.createTextNode(fmt(v[1])) : el("span", "status " + v[0], v[0]));
    if (v[2]) { box.appendChild(el("p", "text reason", v[2])); }
    if (v[3]) { box.appendChild(el("p", "text reason error", "error: " + v[3])); }
    return box;
  }
  function sampleId(s) { return s.r + ":" + s.d + ":" + s.q; }

  function renderList(found) {
    var pages = Math.max(1, Math.ceil(found.length / PAGE_ROWS));
    state.page = Math.min(state.page, pages - 1);
    var start = state.page * PAGE_ROWS, rows = sorted(found).slice(start, start + PAGE_ROWS);
    var fragment = document.createDocumentFragment();
    rows.forEach(function (s) {
      var tr = el("tr", "sample");
      tr.dataset.run = s.r;
      tr.appendChild(el("td", null, runLabel(s.r)));
      tr.appendChild(el("td", "num", s.d === null ? "-" : s.d));
      var prompt = el("td", "text-cell"); prompt.appendChild(el("div", "clamp", DATA.prompts[s.q])); tr.appendChild(prompt);
      var response = el("td", "text-cell"); response.appendChild(el("div", "clamp response", s.a)); tr.appendChild(response);
      tr.appendChild(lengthCell(s));
      judges.forEach(function (name) { tr.appendChild(scoreCell(s.j[name])); });
      fragment.appendChild(tr);
      var id = sampleId(s);
      var detail = el("tr", "detail");
      var cell = el("td"); cell.colSpan = 5 + judges.length;
      judges.forEach(function (name) { if (s.j[name]) { cell.appendChild(judgmentBlock(name, s.j[name])); } });
      detail.appendChild(cell);
      detail.hidden = !state.open[id];
      if (state.open[id]) { tr.classList.add("open"); }
      tr.addEventListener("click", function () {
        state.open[id] = !state.open[id];
        detail.hidden = !state.open[id];
        tr.classList.toggle("open", !!state.open[id]);
      });
      fragment.appendChild(detail);
    });
    tbody.replaceChildren(fragment);
    return { pages: pages, first: found.length ? start + 1 : 0, last: start + rows.length };
  }

  function renderSide(found) {
    var groups = {}, order = [];
    found.forEach(function (s) {
      if (!groups[s.q]) { groups[s.q] = true; order.push(s.q); }
    });
    order.sort(function (a, b) { return a - b; });  // prompts in task order, whichever run matched first
    var pages = Math.max(1, Math.ceil(order.length / PAGE_GROUPS));
    state.page = Math.min(state.page, pages - 1);
    var start = state.page * PAGE_GROUPS, shown = order.slice(start, start + PAGE_GROUPS);
    var matching = {};
    found.forEach(function (s) { matching[sampleId(s)] = true; });
    var byPrompt = {};
    DATA.samples.forEach(function (s) {
      if (shown.indexOf(s.q) >= 0 && (!state.runs || state.runs[s.r])) { (byPrompt[s.q] = byPrompt[s.q] || []).push(s); }
    });
    var box = document.getElementById("side-view"), fragment = document.createDocumentFragment();
    shown.forEach(function (q) {
      var group = el("div", "prompt-group");
      group.dataset.prompt = q;
      group.appendChild(el("p", "text", DATA.prompts[q]));
      var grid = el("div", "side-grid");
      byPrompt[q].sort(function (a, b) { return a.r - b.r; }).forEach(function (s) {
        var cell = el("div", "side-cell" + (matching[sampleId(s)] ? "" : " nomatch"));
        cell.dataset.run = s.r;
        cell.appendChild(el("h5", null, runLabel(s.r)));
        cell.appendChild(el("p", "text response", s.a));
        var scores = el("div", "scores");
        judges.forEach(function (name) { if (s.j[name]) { scores.appendChild(judgmentBlock(name, s.j[name])); } });
        cell.appendChild(scores);
        grid.appendChild(cell);
      });
      group.appendChild(grid);
      fragment.appendChild(group);
    });
    box.replaceChildren(fragment);
    return { pages: pages, first: order.length ? start + 1 : 0, last: start + shown.length, groups: order.length };
  }

  function render() {
    var found = DATA.samples.filter(matches);
    var side = state.view === "side";
    document.getElementById("sample-table").hidden = side;
    document.getElementById("side-view").hidden = !side;
    var page = side ? renderSide(found) : renderList(found);
    var count = document.getElementById("match-count");
    count.dataset.matching = found.length;
    count.textContent = found.length + " of " + DATA.samples.length + " responses match" +
      (side ? " (" + page.groups + " prompts)" : "");
    document.getElementById("page-info").textContent = (side ? "prompts " : "rows ") + page.first + "\u2013" + page.last +
      ", page " + (state.page + 1) + " of " + page.pages;
    document.getElementById("page-prev").disabled = state.page === 0;
    document.getElementById("page-next").disabled = state.page >= page.pages - 1;
    document.querySelectorAll("th.sortable").forEach(function (th) {
      th.classList.toggle("sorted-asc", th.dataset.sort === state.sort && !state.desc);
      th.classList.toggle("sorted-desc", th.dataset.sort === state.sort && state.desc);
    });
  }

  /* ---- controls ---- */
  function readRuns() {
    var boxes = document.querySelectorAll(".run-check"), picked = {}, all = true;
    boxes.forEach(function (b) { if (b.checked) { picked[b.value] = true; } else { all = false; } });
    state.runs = all ? null : picked;
  }
  function setRuns(ids) {
    document.querySelectorAll(".run-check").forEach(function (b) { b.checked = !ids || ids.indexOf(Number(b.value)) >= 0; });
    readRuns();
  }
  function focusRun(id) {
    setRuns([id]);
    if (state.view === "side") { document.getElementById("view-list").checked = true; state.view = "list"; }
    state.page = 0;
    document.getElementById("focus-text").textContent = "Showing the responses of run " + runLabel(id) + " only.";
    document.getElementById("focus-banner").hidden = false;
    render();
    document.getElementById("samples").scrollIntoView();
  }
  function clearFocus() { setRuns(null); document.getElementById("focus-banner").hidden = true; state.page = 0; render(); }

  document.getElementById("filter").addEventListener("input", function (event) {
    var parsed = parseFilter(event.target.value), error = document.getElementById("filter-error");
    error.hidden = !parsed.error;
    error.textContent = parsed.error || "";
    // An unreadable filter matches nothing: rows of the last valid one would pass for its answer.
    state.preds = parsed.error ? [function () { return false; }] : parsed.preds; state.page = 0; render();
  });
  document.getElementById("search").addEventListener("input", function (event) {
    state.text = event.target.value.trim().toLowerCase(); state.page = 0; render();
  });
  document.querySelectorAll(".run-check").forEach(function (b) {
    b.addEventListener("change", function () { readRuns(); document.getElementById("focus-banner").hidden = true; state.page = 0; render(); });
  });
  document.getElementById("runs-all").addEventListener("click", clearFocus);
  document.getElementById("focus-clear").addEventListener("click", clearFocus);
  document.querySelectorAll("input[name=view]").forEach(function (radio) {
    radio.addEventListener("change", function () { state.view = radio.value; state.page = 0; render(); });
  });
  document.getElementById("page-prev").addEventListener("click", function () { state.page -= 1; render(); });
  document.getElementById("page-next").addEventListener("click", function () { state.page += 1; render(); });
  document.querySelectorAll("th.sortable").forEach(function (th) {
    th.addEventListener("click", function () {
      if (state.sort === th.dataset.sort) { state.desc = !state.desc; } else { state.sort = th.dataset.sort; state.desc = th.dataset.sort.indexOf("judge:") === 0; }
      state.page = 0; render();
    });
  });
  /* Tables rows, links and figure elements that stand for a run filter the browser to it. */
  document.querySelectorAll("tr.pick[data-run], a.run-link").forEach(function (node) {
    if (node.matches("a.run-link") && node.closest("tr.pick[data-run]")) { return; }  // its row handles it
    node.addEventListener("click", function (event) { event.preventDefault(); focusRun(Number(node.dataset.run)); });
  });
  document.querySelectorAll('.pickable svg g[id*="__run"]').forEach(function (node) {
    var id = Number(node.id.split("__run")[1]);
    if (!isNaN(id) && DATA.runs[id]) { node.addEventListener("click", function () { focusRun(id); }); }
  });
  render();
}());

/* The pair browser: each pair's two responses side by side and, per judge, both verdicts with their
 * reasoning (the run's response first as A, then the reference's first). Same rules: textContent only. */
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("report-data").textContent).pairs;
  var list = document.getElementById("pair-list");
  if (!list || !DATA || !DATA.groups.length) { return; }
  var PAGE = 10, state = { group: 0, run: "", flipped: false, page: 0 };
  var groupSelect = document.getElementById("pair-group"), runSelect = document.getElementById("pair-run");

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }
  function outcomeText(o, other) {
    if (o === null || o === undefined) { return "no verdict in one order: not counted"; }
    return o > 0.5 ? "run wins (" + o + ")" : (o < 0.5 ? other + " wins (" + o + ")" : "tie (0.5)");
  }
  function verdictBlock(title, v, runSide, other) {
    var box = el("div", "verdict");
    box.appendChild(el("h6", null, title));
    var line = el("p", "verdict-line");
    if (v[0] === "scored") {
      line.appendChild(el("strong", null, "Verdict: " + v[1]));
      var winner = v[1] === runSide ? "the run" : (v[1] === "A" || v[1] === "B" ? "the " + other : null);
      if (winner) { line.appendChild(document.createTextNode(" (" + winner + ")")); }
    } else { line.appendChild(el("span", "status " + v[0], v[0] || "not asked")); }
    box.appendChild(line);
    if (v[2]) { box.appendChild(el("p", "text reason", v[2])); }
    if (v[3]) { box.appendChild(el("p", "text reason error", "error: " + v[3])); }
    return box;
  }
  function matching() {
    return DATA.rows.filter(function (p) {
      if (p.g !== state.group || (state.run && p.r !== state.run)) { return false; }
      if (!state.flipped) { return true; }
      for (var k in p.j) { if (p.j[k][1] === false) { return true; } }
      return false;
    });
  }
  function fillRuns() {
    var runs = [];
    DATA.rows.forEach(function (p) { if (p.g === state.group && runs.indexOf(p.r) < 0) { runs.push(p.r); } });
    var options = [el("option", null, "all")];
    options[0].value = "";
    runs.forEach(function (r) { var o = el("option", null, r); o.value = r; options.push(o); });
    runSelect.replaceChildren.apply(runSelect, options);
    state.run = "";
  }
  function render() {
    var found = matching(), group = DATA.groups[state.group];
    /* a round robin's run-vs-run comparison: the other run stands where the reference does */
    var other = group.between ? "other run" : "reference", otherLabel = group.between ? group.reference : "reference";
    var pages = Math.max(1, Math.ceil(found.length / PAGE));
    state.page = Math.min(state.page, pages - 1);
    var shown = found.slice(state.page * PAGE, state.page * PAGE + PAGE), fragment = document.createDocumentFragment();
    shown.forEach(function (p) {
      var card = el("article", "pair-card");
      card.dataset.run = p.r;
      card.appendChild(el("h5", null, "Prompt " + p.d + ": " + p.r + " vs " + group.reference));
      card.appendChild(el("p", "text prompt", p.q));
      var sides = el("div", "pair-sides");
      [[p.r, p.a, p.n[0]], [group.reference + " (" + other + ")", p.b, p.n[1]]].forEach(function (side) {
        var cell = el("div", "side-cell");
        cell.appendChild(el("h6", null, side[0] + (side[2] === null || side[2] === undefined ? "" : " \u00b7 " + side[2] + " tokens")));
        cell.appendChild(el("p", "text response", side[1]));
        sides.appendChild(cell);
      });
      card.appendChild(sides);
      Object.keys(p.j).forEach(function (name) {
        var j = p.j[name], box = el("div", "pair-judgment" + (j[1] === false ? " flipped" : ""));
        box.appendChild(el("p", "verdict-head", name + ": " + outcomeText(j[0], other) +
          (j[1] === false ? " \u2014 the verdict changed with the order" : (j[1] ? " \u2014 both orders agree" : ""))));
        var orders = el("div", "pair-sides");
        orders.appendChild(verdictBlock("Order 1: " + p.r + " as A, " + otherLabel + " as B", j[2], "A", other));
        orders.appendChild(verdictBlock("Order 2: " + otherLabel + " as A, " + p.r + " as B", j[3], "B", other));
        box.appendChild(orders);
        card.appendChild(box);
      });
      fragment.appendChild(card);
    });
    list.replaceChildren(fragment);
    document.getElementById("pair-count").textContent = found.length + " pairs";
    document.getElementById("pair-page").textContent = "page " + (state.page + 1) + " of " + pages;
    document.getElementById("pair-prev").disabled = state.page === 0;
    document.getElementById("pair-next").disabled = state.page >= pages - 1;
  }
  groupSelect.addEventListener("change", function () { state.group = Number(groupSelect.value); state.page = 0; fillRuns(); render(); });
  runSelect.addEventListener("change", function () { state.run = runSelect.value; state.page = 0; render(); });
  document.getElementById("pair-flipped").addEventListener("change", function (event) {
    state.flipped = event.target.checked; state.page = 0; render();
  });
  document.getElementById("pair-prev").addEventListener("click", function () { state.page -= 1; render(); });
  document.getElementById("pair-next").addEventListener("click", function () { state.page += 1; render(); });
  fillRuns();
  render();
}());
