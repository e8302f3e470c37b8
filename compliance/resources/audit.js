// The audit view's interactive table (compliance/outputs/audit_view.py renders everything
// else in the HTML itself). Draws from #audit-data with textContent only, so nothing from
// the data is ever parsed as markup.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("audit-data").textContent);
  const app = document.getElementById("table-app");
  const words = new Map(data.outcomes.map(o => [o[0], o[1]]));
  const colours = new Map(data.outcomes.map(o => [o[0], o[2]]));
  const PAGE = 500;
  // Worst first: what sorting by outcome puts on top.
  const RANK = {not_compliant: 0, not_verifiable: 1, waived: 2, compliant: 3, skipped: 4};
  const number = n => n.toLocaleString("en");
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }
  function word(outcome, text) {
    const span = el("span", {class: "word", "data-outcome": outcome, text: text || words.get(outcome)});
    span.style.color = colours.get(outcome);
    return span;
  }

  // Each subscription with what filtering and sorting read, computed once.
  const subs = data.subscriptions.map((s, index) => ({
    s, index,
    text: [s.name, s.id, ...s.path, ...Object.values(s.cases).map(c => c.microsoft || "")].join("\n").toLowerCase(),
    path: s.path.join(" \u203a ").toLowerCase(),
    under: new Set(s.under || []),
  }));
  const state = {outcomes: new Set(data.outcomes.map(o => o[0])), control: "", needle: "", group: -1, sort: "name", disagrees: false};
  const audited = data.subscriptions.reduce((total, s) => total + Object.keys(s.cases).length, 0);
  let rows = [], drawn = 0, shownCases = 0;

  // --- the filters ---------------------------------------------------------------------------
  const filters = el("div", {id: "filters"});
  const outcomeTable = el("table", {id: "outcome-filter"});
  outcomeTable.append(el("caption", {text: "Show subscriptions with a case that is"}),
    el("thead", {}, el("tr", {}, el("th", {text: "outcome"}), el("th", {text: "subscriptions"}), el("th", {text: "cases"}))));
  const outcomeBody = el("tbody");
  const outcomeCounts = new Map();
  for (const [outcome] of data.outcomes) {
    const box = el("input", {type: "checkbox", "data-outcome": outcome});
    box.checked = true;
    box.addEventListener("change", () => { box.checked ? state.outcomes.add(outcome) : state.outcomes.delete(outcome); draw(); });
    const subsCell = el("td", {class: "subscriptions"}), casesCell = el("td", {class: "cases"});
    outcomeCounts.set(outcome, [subsCell, casesCell]);
    outcomeBody.append(el("tr", {"data-outcome": outcome}, el("td", {}, el("label", {}, box, " ", word(outcome))), subsCell, casesCell));
  }
  outcomeTable.append(outcomeBody);
  const outcomes = el("div", {id: "outcomes"}, outcomeTable, el("p", {class: "note",
    text: "A case is one control on one subscription; a subscription counts under each outcome one of its cases has."}));

  const fields = el("div", {id: "filter-fields"});
  const search = el("input", {id: "search", type: "search", placeholder: "Name, ID or management group"});
  search.addEventListener("input", () => { state.needle = search.value.trim().toLowerCase(); draw(); });
  const control = el("select", {id: "control-filter"}, el("option", {value: "", text: "every control"}));
  for (const c of data.controls) control.append(el("option", {value: c.key, text: c.cis + " " + c.title}));
  control.addEventListener("change", () => { state.control = control.value; draw(); });
  const sort = el("select", {id: "sort"});
  for (const [value, text] of [["name", "name"], ["id", "subscription ID"], ["outcome", "outcome, worst first"], ["path", "management group path"]]) {
    sort.append(el("option", {value: value, text: text}));
  }
  sort.addEventListener("change", () => { state.sort = sort.value; draw(); });
  const group = el("p", {id: "group-filter", hidden: ""});
  const exporter = el("button", {id: "export", type: "button", text: "Download the shown cases (CSV)"});
  exporter.addEventListener("click", download);
  fields.append(el("label", {}, "Find", search), el("label", {}, "Control", control), el("label", {}, "Sort by", sort));
  if (data.cross_check) {  // --azure-cross-check: Microsoft Defender for Cloud's verdict beside ours
    const differs = el("input", {type: "checkbox", id: "disagrees-filter"});
    differs.addEventListener("change", () => { state.disagrees = differs.checked; draw(); });
    fields.append(el("label", {}, differs, " only cases where Microsoft's verdict disagrees"));
  }
  fields.append(group, el("div", {}, exporter));
  filters.append(outcomes, fields);
  const count = el("p", {id: "count", role: "status"});

  const table = el("table", {id: "cases"});
  table.append(el("thead", {}, el("tr", {}, el("th", {text: "Subscription"}), el("th", {text: "Subscription ID"}),
    ...data.controls.map(c => el("th", {title: c.title, "data-control": c.key, text: c.cis})))));
  const body = el("tbody");
  table.append(body);
  const more = el("button", {id: "more", type: "button"});
  more.addEventListener("click", () => page(PAGE));
  app.append(filters, count, table, more);

  // --- the management-group table filters too ------------------------------------------------
  const groupRows = Array.from(document.querySelectorAll("#per-group tbody tr[data-group]"));
  function chooseGroup(index) {
    state.group = state.group === index ? -1 : index;
    for (const tr of groupRows) tr.classList.toggle("active", Number(tr.dataset.group) === state.group);
    group.replaceChildren();
    group.hidden = state.group < 0;
    if (state.group >= 0) {
      const clear = el("button", {type: "button", text: "every group"});
      clear.addEventListener("click", () => chooseGroup(state.group));
      group.append("Management group: ", el("b", {text: data.groups[state.group].group}), " (and the groups within it)", clear);
    }
    draw();
  }
  for (const tr of groupRows) {
    const index = Number(tr.dataset.group);
    tr.setAttribute("tabindex", "0");
    tr.setAttribute("title", "List only the subscriptions below this group");
    tr.addEventListener("click", () => { chooseGroup(index); app.scrollIntoView({block: "start"}); });
    tr.addEventListener("keydown", event => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); chooseGroup(index); } });
  }

  // --- filtering, counting, sorting ----------------------------------------------------------
  function draw() {
    const tally = new Map(data.outcomes.map(o => [o[0], [0, 0]]));
    const worst = new Map();
    rows = [];
    shownCases = 0;
    for (const x of subs) {
      if (state.needle && !x.text.includes(state.needle)) continue;
      if (state.group >= 0 && !x.under.has(state.group)) continue;
      const seen = new Set();
      let hits = 0, rank = 9;
      for (const [key, c] of Object.entries(x.s.cases)) {
        if (state.control && key !== state.control) continue;
        if (state.disagrees && !c.disagrees) continue;
        const counts = tally.get(c.outcome);
        counts[1] += 1;
        if (!seen.has(c.outcome)) { seen.add(c.outcome); counts[0] += 1; }
        if (state.outcomes.has(c.outcome)) { hits += 1; rank = Math.min(rank, RANK[c.outcome]); }
      }
      if (!hits) continue;
      rows.push(x);
      shownCases += hits;
      worst.set(x, rank);
    }
    for (const [outcome, [subsCell, casesCell]] of outcomeCounts) {
      const [n, cases] = tally.get(outcome);
      subsCell.textContent = number(n);
      casesCell.textContent = number(cases);
    }
    const by = {
      name: (a, b) => a.index - b.index,
      id: (a, b) => (a.s.id < b.s.id ? -1 : a.s.id > b.s.id ? 1 : a.index - b.index),
      outcome: (a, b) => worst.get(a) - worst.get(b) || a.index - b.index,
      path: (a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : a.index - b.index),
    }[state.sort];
    rows.sort(by);
    body.replaceChildren();
    drawn = 0;
    page(PAGE);
  }
  function page(n) {
    const fragment = document.createDocumentFragment();
    for (const x of rows.slice(drawn, drawn + n)) fragment.append(row(x.s));
    body.append(fragment);
    drawn = Math.min(rows.length, drawn + n);
    count.textContent = "Showing " + number(drawn) + " of " + number(rows.length) + " subscriptions that match ("
      + number(shownCases) + " of their cases match the filters); " + number(data.subscriptions.length)
      + " subscriptions and " + number(audited) + " cases audited. Click a subscription for each control's verdict, fix and evidence.";
    more.hidden = drawn >= rows.length;
    more.textContent = "Show " + Math.min(PAGE, rows.length - drawn) + " more";
  }
  function row(s) {
    const name = el("td", {text: s.name});
    if (s.path.length) name.append(el("div", {class: "path", text: s.path.join(" \u203a ")}));
    const tr = el("tr", {class: "sub", "data-subscription": s.id}, name, el("td", {class: "id", text: s.id}));
    for (const c of data.controls) {
      const found = s.cases[c.key];
      const cell = el("td", {"data-control": c.key}, found ? word(found.outcome, found.word) : el("span", {text: "\u2013"}));
      if (found && found.disagrees) cell.append(el("span", {class: "differs", title: found.microsoft, text: " \u2260 Microsoft"}));
      if (state.control && state.control !== c.key) cell.classList.add("dim");
      tr.append(cell);
    }
    tr.addEventListener("click", () => toggle(tr, s));
    return tr;
  }

  // --- the shown cases as CSV ----------------------------------------------------------------
  // As compliance/text.py's csv_cell: controls, invisible and unencodable characters shown
  // escaped, no CI log command, and a cell a spreadsheet would run as a formula prefixed.
  const UNSAFE = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/gu;
  const CI_COMMAND = /##(?=(?:[vV][sS][oO])\[|\[)|^\s*::/gm;
  function escaped(ch) {
    if (ch === "\t" || ch === "\n") return ch;
    const code = ch.codePointAt(0);
    const hex = width => code.toString(16).padStart(width, "0");
    return code <= 0xff ? "\\x" + hex(2) : code <= 0xffff ? "\\u" + hex(4) : "\\U" + hex(8);
  }
  function csvCell(value) {
    let text = String(value === null || value === undefined ? "" : value).replace(UNSAFE, escaped);
    text = text.replace(CI_COMMAND, found => (found === "##" ? "#\\#" : found.slice(0, -2) + "\\::"));
    if (/^[=+\-@\t\r]/.test(text)) text = "'" + text;
    return /[",\r\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }
  function csv() {
    const lines = [["subscription_id", "subscription_name", "management_group_path", "control", "cis_version", "cis_id", "verdict", "reason", "waiver", "microsoft"]];
    for (const x of rows) {
      for (const c of data.controls) {
        const found = x.s.cases[c.key];
        if (!found || (state.control && state.control !== c.key) || !state.outcomes.has(found.outcome)) continue;
        if (state.disagrees && !found.disagrees) continue;
        lines.push([x.s.id, x.s.name, x.s.path.join(" > "), c.key, data.cis_version, c.cis_id, found.outcome, found.reason, found.waiver || "", found.microsoft || ""]);
      }
    }
    return lines.map(cells => cells.map(csvCell).join(",")).join("\r\n") + "\r\n";
  }
  function download() {
    const url = URL.createObjectURL(new Blob([csv()], {type: "text/csv;charset=utf-8"}));
    const link = el("a", {href: url, download: "audit-shown-cases.csv"});
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }

  // --- a subscription's details --------------------------------------------------------------
  function toggle(tr, s) {
    const next = tr.nextElementSibling;
    if (next && next.classList.contains("details-row")) { next.remove(); tr.classList.remove("open"); return; }
    const cell = el("td", {colspan: String(2 + data.controls.length)}, details(s));
    tr.after(el("tr", {class: "details-row"}, cell));
    tr.classList.add("open");
  }
  function details(s) {
    const box = el("div", {class: "details"});
    box.append(el("p", {text: s.name + " (" + s.id + "), state " + s.state + (s.tenant ? ", home tenant " + s.tenant : "")
      + (s.delegated_to.length ? ", delegated through Azure Lighthouse to " + s.delegated_to.join(", ") : "")}));
    if (s.path.length) box.append(el("p", {class: "path", text: "Management groups: " + s.path.join(" \u203a ")}));
    for (const c of data.controls) {
      const found = s.cases[c.key];
      if (!found) continue;
      const part = el("div", {class: "case", "data-control": c.key});
      part.append(el("h3", {}, c.cis + " " + c.title + ": ", word(found.outcome, found.word)));
      part.append(el("p", {text: found.reason}));
      if (found.waiver) part.append(el("p", {text: "Waiver " + found.waiver}));
      if (found.microsoft) part.append(el("p", {class: "microsoft" + (found.disagrees ? " differs" : ""), text: found.microsoft}));
      if (found.fix.length) {
        part.append(el("p", {text: "Why it matters: " + c.rationale}));
        const fix = el("div", {class: "fix"}, el("h4", {text: "How to fix"}));
        for (const [kind, note, text] of found.fix) {
          if (kind === "prose") fix.append(el("p", {text: text}));
          else if (kind === "rest") fix.append(el("p", {text: "The REST request it sends:"}), el("pre", {text: text}));
          else {
            fix.append(el("p", {text: "From a shell" + (note ? " (" + note + ")" : "") + ":"}));
            const code = el("code", {text: text});
            const copy = el("button", {type: "button", text: "Copy command"});
            copy.addEventListener("click", event => { event.stopPropagation(); copyText(text, copy); });
            fix.append(code, copy);
          }
        }
        part.append(fix);
      }
      box.append(part);
    }
    const evidence = el("div", {class: "evidence"}, el("h3", {text: "Evidence"}));
    for (const line of s.evidence) evidence.append(el("p", {text: line}));
    box.append(evidence);
    for (const raw of s.raw) box.append(el("details", {class: "raw"}, el("summary", {text: "Raw response, as received"}), el("pre", {text: raw})));
    return box;
  }
  function copyText(text, button) {
    const done = () => { button.textContent = "Copied"; };
    if (navigator.clipboard) navigator.clipboard.writeText(text).then(done, () => select(text, done));
    else select(text, done);
  }
  function select(text, done) {
    const area = el("textarea");
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
    done();
  }
  draw();
})();
