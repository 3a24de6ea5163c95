// The JavaScript that tests/test_browser.py runs in the page, one snippet per section.
// A section starts with a line `// @name`; test_browser.py loads them by name (JS[name]).
// Each snippet is one expression: a function for page.evaluate, or (for @gate) a
// statement run by page.add_init_script before JupyterLab loads.

// @gate
// Runs in the page before JupyterLab loads. JupyterLab receives kernel messages through
// `WebSocket.onmessage`; this gate can hold them back, in order, while the test takes the
// live screenshots, so that they show one moment of the run. The kernel runs on meanwhile;
// on release the page receives everything it held, in order.
(() => {
  const gate = {frozen: false, held: [],
    release() { while (this.held.length) this.held.shift()(); this.frozen = false; }};
  window.__summarizerGate = gate;
  const onmessage = Object.getOwnPropertyDescriptor(WebSocket.prototype, "onmessage");
  Object.defineProperty(WebSocket.prototype, "onmessage", {
    configurable: true, enumerable: onmessage.enumerable, get: onmessage.get,
    set(handler) {
      const socket = this;
      onmessage.set.call(this, typeof handler !== "function" ? handler : function (event) {
        if (gate.frozen) gate.held.push(() => handler.call(socket, event));
        else return handler.call(socket, event);
      });
    },
  });
})();

// @recorder
// Installed in the page before Run All Cells; the MutationObserver sees every render. It
// notes each total the live counts show, and whether the tree's diagram rendered. SETTLE_MS
// after the third nonzero total is shown with the tree drawn (the partitions' flushes
// arrive within milliseconds of each other), at the first look that finds both again, it
// freezes the gate: the test then takes the live screenshots and releases it. Only a "live"
// dashboard counts for that: the one the notebook stored, shown on open, is "closed". It
// also notes whether JupyterLab's news prompt ever showed.
(settleMs) => {
  const SHOT_AT = 3;  // distinct totals shown before the live screenshots
  const rec = {totals: [], treeRendered: false, treeText: "", treeErrors: [], froze: null,
               news: false};
  window.__summarizerRecorder = rec;
  let lastSrc = null;
  let settledAt = null;  // when the live screenshots may be taken
  const look = () => {
    let total = null;
    let live = false;
    rec.news = rec.news || document.body.textContent.includes("official Jupyter news");
    const counts = document.querySelector(".summarizer-live-counts");
    if (counts) {
      const m = /Flushed events\s*\((\w+)\):\s*([\d,]+)/.exec(counts.textContent);
      if (m) {
        total = parseInt(m[2].replace(/,/g, ""), 10);
        live = m[1] === "live";
        const last = rec.totals[rec.totals.length - 1];
        if (!last || last.total !== total || last.state !== m[1]) {
          const table = counts.querySelector("table");
          const users = table ? [...table.querySelectorAll("tbody tr")].map(
            (tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent.trim())) : [];
          rec.totals.push({at: performance.now(), state: m[1], total, users});
        }
      }
    }
    const tree = document.querySelector(".summarizer-sup-tree");
    let drawn = false;
    if (tree) {
      for (const warn of tree.querySelectorAll(".jp-RenderedMermaid.jp-mod-warning")) {
        const text = warn.textContent.trim().slice(0, 300);
        if (!rec.treeErrors.includes(text)) rec.treeErrors.push(text);
      }
      // JupyterLab 4 draws Mermaid as <img src="data:image/svg+xml,...">; others inline <svg>.
      const svg = tree.querySelector("svg");
      const img = tree.querySelector(".jp-RenderedMermaid img[src^='data:image/svg+xml']");
      drawn = !!(svg || img);
      let text = null;
      if (svg) text = svg.outerHTML;
      else if (img && img.src !== lastSrc) {
        lastSrc = img.src;
        try { text = decodeURIComponent(img.src.slice(img.src.indexOf(",") + 1)); }
        catch (e) { text = null; }
      }
      if (text && text.includes("<svg")) {
        rec.treeRendered = true;
        if (text.length > rec.treeText.length) rec.treeText = text;
      }
    }
    // the third flush shown: the chart has bars, the counts have climbed
    const flushesShown = rec.totals.filter((t) => t.state === "live" && t.total > 0).length;
    if (rec.froze || !total || !drawn || !live || flushesShown < SHOT_AT) return;
    if (settledAt === null) {  // the first flush shown: look again once it has settled
      settledAt = performance.now() + settleMs;
      setTimeout(look, settleMs);
    } else if (performance.now() >= settledAt) {
      window.__summarizerGate.frozen = true;
      rec.froze = {total, at: performance.now()};
    }
  };
  new MutationObserver(look).observe(document.body, {
    subtree: true, childList: true, characterData: true, attributes: true,
    attributeFilter: ["src", "class"],
  });
  look();
}

// @state
// One look at the page while it runs: prompts, kernel status, the live views.
() => {
  const prompts = [...document.querySelectorAll(".jp-Notebook .jp-CodeCell .jp-InputPrompt")]
    .map((e) => e.textContent.trim());
  const status = [...document.querySelectorAll(".jp-StatusBar-TextItem")]
    .map((e) => e.textContent.trim()).find((t) => /\|\s*\S+$/.test(t)) || "";
  const counts = document.querySelector(".summarizer-live-counts");
  const m = counts ? /Flushed events\s*\((\w+)\):\s*([\d,]+)/.exec(counts.textContent) : null;
  const tree = document.querySelector(".summarizer-sup-tree");
  const drawn = !!(tree && (tree.querySelector("svg") ||
    tree.querySelector(".jp-RenderedMermaid img[src^='data:image/svg+xml']")));
  return {
    busy: prompts.filter((p) => p.includes("*")).length,
    status,
    total: m ? parseInt(m[2].replace(/,/g, ""), 10) : null,
    treeDrawn: drawn,
    frozen: !!(window.__summarizerGate && window.__summarizerGate.frozen),
  };
}

// @result
// What the page shows once the run is over.
() => {
  const cells = [...document.querySelectorAll(".jp-Notebook .jp-CodeCell")].map((cell, i) => {
    const prompt = cell.querySelector(".jp-InputPrompt");
    const editor = cell.querySelector(".cm-content") || cell.querySelector(".jp-InputArea-editor");
    const source = editor ? editor.innerText.split("\n")[0].slice(0, 80) : "";
    const errors = [...cell.querySelectorAll(
      ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']," +
      ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']")]
      .map((e) => e.textContent.trim());
    const widgetErrors = [...cell.querySelectorAll(".jp-OutputArea-output")]
      .map((e) => e.textContent.trim())
      .filter((t) => /^(Error displaying widget|Error rendering output)/.test(t));
    return {index: i + 1, prompt: prompt ? prompt.textContent.trim() : "", source, errors,
            widgetErrors};
  });
  const table = document.querySelector("table.summarizer-users");
  const counts = document.querySelector(".summarizer-live-counts");
  const log = document.querySelector(".summarizer-log");
  return {
    cells,
    usersTable: table ? {
      rows: table.querySelectorAll("tbody tr").length,
      ids: [...table.querySelectorAll("tbody tr")].map((tr) => {
        const td = tr.querySelector("td, th"); return td ? td.textContent.trim() : "";
      }),
    } : null,
    counts: counts ? counts.textContent : null,
    log: log ? log.textContent : null,
    news: document.body.textContent.includes("official Jupyter news"),
  };
}

// @mermaid
// Every Mermaid diagram in the notebook: its kind (aria-roledescription: "flowchart-v2",
// "sequence", ...) once drawn as SVG, and the warnings of those that failed to parse.
// JupyterLab 4 draws Mermaid as <img src="data:image/svg+xml,...">; others inline <svg>.
() => {
  const drawn = [];
  for (const out of document.querySelectorAll(".jp-Notebook .jp-RenderedMermaid")) {
    const svg = out.querySelector("svg");
    const img = out.querySelector("img[src^='data:image/svg+xml']");
    let text = svg ? svg.outerHTML : "";
    if (!svg && img) {
      try { text = decodeURIComponent(img.src.slice(img.src.indexOf(",") + 1)); }
      catch (e) { text = ""; }
    }
    const m = /aria-roledescription="([^"]+)"/.exec(text);
    if (text.includes("<svg")) drawn.push(m ? m[1] : "unknown");
  }
  const warnings = [...document.querySelectorAll(".jp-Notebook .jp-RenderedMermaid.jp-mod-warning")]
    .map((e) => e.textContent.trim().slice(0, 300));
  return {drawn, warnings};
}

// @opened
// What a reader sees on opening the notebook, before running anything: no widget's text
// repr, the users table, and the dashboard as the notebook stored it.
() => {
  const reprs = [...document.querySelectorAll(".jp-Notebook .jp-OutputArea-output")]
    .map((e) => e.textContent.trim())
    .filter((t) => /^(UsersTable|VBox|HBox|Dashboard)\(/.test(t))
    .map((t) => t.slice(0, 120));
  const table = document.querySelector("table.summarizer-users");
  const counts = document.querySelector(".summarizer-live-counts");
  const visible = (e) => !!e && e.getClientRects().length > 0 &&
    getComputedStyle(e).visibility !== "hidden";
  return {
    reprs,
    usersRows: table ? table.querySelectorAll("tbody tr").length : 0,
    usersVisible: visible(table),
    counts: counts ? counts.textContent.replace(/\s+/g, " ").slice(0, 120) : null,
  };
}

// @live_boxes
// Scrolls the dashboard's cell to the top of the notebook area (once the tree's image is
// decoded); returns the boxes to clip.
async () => {
  const counts = document.querySelector(".summarizer-live-counts");
  const tree = document.querySelector(".summarizer-sup-tree");
  const cell = counts && counts.closest(".jp-Cell");
  const area = cell && cell.closest(".jp-WindowedPanel-outer");
  if (!tree || !cell || !area) return null;
  for (const img of tree.querySelectorAll("img")) await img.decode().catch(() => null);
  cell.scrollIntoView({block: "start"});
  const box = (e) => {
    const r = e.getBoundingClientRect();
    return {x: r.x, y: r.y, width: r.width, height: r.height};
  };
  // the tree with its "Supervision tree" heading: the VBox that holds both
  return {live_views: box(area), live_counts: box(counts),
          sup_tree: box(tree.closest(".widget-vbox") || tree)};
}
