// The audit view (compliance/outputs/audit_view.py): draws the page from #audit-data with
// textContent only, so nothing from the data is ever parsed as markup.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("audit-data").textContent);
  const main = document.getElementById("audit");
  const words = new Map(data.outcomes.map(o => [o[0], o[1]]));
  const colours = new Map(data.outcomes.map(o => [o[0], o[2]]));
  const PAGE = 500;
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
  document.getElementById("audit-loading").remove();
  document.getElementById("audit-title").textContent = data.title;
  if (data.error) main.append(el("div", {id: "banner", role: "alert", text: data.error + "."}));

  main.append(el("h2", {text: "Audit"}));
  const facts = el("table", {id: "facts"});
  for (const [label, value] of data.facts) facts.append(el("tr", {}, el("th", {text: label}), el("td", {text: value})));
  main.append(facts);

  main.append(el("h2", {text: "Compliance per control"}));
  const judged = data.outcomes.filter(o => o[0] !== "skipped");
  const summary = el("table", {id: "per-control"});
  summary.append(el("tr", {}, el("th", {text: "control"}), ...data.outcomes.map(o => el("th", {text: o[1]})),
    el("th", {text: "compliance"}), el("th", {text: "compliant share of judged cases"})));
  for (const c of data.controls) {
    const total = judged.reduce((n, o) => n + c.counts[o[0]], 0);
    const bar = el("div", {class: "bar", "data-control": c.key});
    for (const [outcome, label, colour] of judged) {
      if (!c.counts[outcome] || !total) continue;
      const part = el("span", {title: label + ": " + c.counts[outcome], "data-outcome": outcome});
      part.style.width = (100 * c.counts[outcome] / total) + "%";
      part.style.background = colour;
      bar.append(part);
    }
    const percent = c.percent === null ? "n/a" : c.percent.toFixed(1) + " %";
    summary.append(el("tr", {"data-control": c.key}, el("td", {text: c.cis + " " + c.title}),
      ...data.outcomes.map(o => el("td", {"data-outcome": o[0], text: String(c.counts[o[0]])})),
      el("td", {class: "percent", text: percent}), el("td", {}, bar)));
  }
  main.append(summary);
  main.append(el("p", {text: "Compliance counts waived cases against and leaves skipped ones (disabled or deleted subscriptions) aside."}));

  if (data.groups.length) {
    main.append(el("h2", {text: "Compliance per management group"}));
    const groups = el("table", {id: "per-group"});
    groups.append(el("tr", {}, el("th", {text: "management group"}), el("th", {text: "subscriptions"}),
      ...data.controls.map(c => el("th", {title: c.title, text: c.cis}))));
    for (const g of data.groups) {
      groups.append(el("tr", {"data-group": g.group}, el("td", {text: g.group}), el("td", {text: String(g.subscriptions)}),
        ...data.controls.map(c => {
          const found = g.controls[c.key];
          if (!found) return el("td", {text: "\u2013"});
          const percent = found.percent === null ? "n/a" : found.percent.toFixed(1) + " %";
          return el("td", {text: percent + (found.failing ? " (" + found.failing + " failing)" : "")});
        })));
    }
    main.append(groups);
  }

  main.append(el("h2", {text: "Subscriptions"}));
  const controls = el("div", {id: "controls"});
  const totals = new Map(data.outcomes.map(o => [o[0], 0]));
  for (const s of data.subscriptions) for (const c of Object.values(s.cases)) totals.set(c.outcome, totals.get(c.outcome) + 1);
  const shown = new Set(data.outcomes.map(o => o[0]));
  for (const [outcome, label] of data.outcomes) {
    const box = el("input", {type: "checkbox", "data-outcome": outcome});
    box.checked = true;
    box.addEventListener("change", () => { box.checked ? shown.add(outcome) : shown.delete(outcome); draw(); });
    controls.append(el("label", {}, box, " ", word(outcome), " " + totals.get(outcome)));
  }
  const search = el("input", {id: "search", type: "search", placeholder: "Find a subscription by name, ID or management group"});
  search.addEventListener("input", () => draw());
  controls.append(search);
  main.append(controls);
  const count = el("p", {id: "count"});
  main.append(count);

  const table = el("table", {id: "cases"});
  table.append(el("thead", {}, el("tr", {}, el("th", {text: "Subscription"}), el("th", {text: "Subscription ID"}),
    ...data.controls.map(c => el("th", {title: c.title, text: c.cis})))));
  const body = el("tbody");
  table.append(body);
  main.append(table);
  const more = el("button", {id: "more"});
  more.addEventListener("click", () => page(PAGE));
  main.append(more);

  let rows = [], drawn = 0;
  function draw() {
    const needle = search.value.trim().toLowerCase();
    rows = data.subscriptions.filter(s =>
      Object.values(s.cases).some(c => shown.has(c.outcome)) &&
      (!needle || [s.name, s.id, ...s.path].some(text => text.toLowerCase().includes(needle))));
    body.replaceChildren();
    drawn = 0;
    page(PAGE);
  }
  function page(n) {
    const fragment = document.createDocumentFragment();
    for (const s of rows.slice(drawn, drawn + n)) fragment.append(row(s));
    body.append(fragment);
    drawn = Math.min(rows.length, drawn + n);
    count.textContent = "Showing " + drawn + " of " + rows.length + " subscriptions (" + data.subscriptions.length + " audited). Click a subscription for each control's verdict, fix and evidence.";
    more.hidden = drawn >= rows.length;
    more.textContent = "Show " + Math.min(PAGE, rows.length - drawn) + " more";
  }
  function row(s) {
    const name = el("td", {text: s.name});
    if (s.path.length) name.append(el("div", {class: "path", text: s.path.join(" \u203a ")}));
    const tr = el("tr", {class: "sub", "data-subscription": s.id}, name, el("td", {class: "id", text: s.id}));
    for (const c of data.controls) {
      const found = s.cases[c.key];
      tr.append(el("td", {"data-control": c.key}, found ? word(found.outcome, found.word) : el("span", {text: "\u2013"})));
    }
    tr.addEventListener("click", () => toggle(tr, s));
    return tr;
  }
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
    for (const body of s.raw) box.append(el("details", {class: "raw"}, el("summary", {text: "Raw response, as received"}), el("pre", {text: body})));
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
