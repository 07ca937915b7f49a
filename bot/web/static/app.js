/* Variance Analyst web chat: upload, report summary, and answers streamed over Server-Sent Events.
 *
 * Text from the file and from the model is never inserted as HTML by this script: the report summary is built
 * with textContent, and answers are rendered by markdown-it with raw HTML, links, images and autolinks
 * switched off (the server has already made mentions and links inert with its text filter).
 *
 * Streaming: one EventSource per question. After `done` or a server `error` event the page closes it (a
 * browser's EventSource would otherwise reconnect by itself and ask the same question again). A dropped
 * connection is retried by the page with backoff; the retried answer replaces the partial text, so nothing is
 * shown twice. Stop closes the stream, which cancels the run on the server.
 *
 * Charts: a named SSE event `chart` with {"url": "/...", "alt": "..."} is shown inline under the answer
 * (EXTRA_EVENTS below); further event types plug in the same way.
 */
(function () {
  "use strict";

  const MAX_RETRIES = 5;
  const TOKEN_KEY = "variance-analyst-token";

  const md = window.markdownit({ html: false, linkify: false, typographer: false, breaks: false });
  md.disable(["link", "image", "autolink", "linkify"], true);
  md.validateLink = function () { return false; };
  md.renderer.rules.table_open = function () { return '<div class="table-wrap"><table>'; };
  md.renderer.rules.table_close = function () { return "</table></div>"; };

  const $ = function (id) { return document.getElementById(id); };
  const els = {
    dropzone: $("dropzone"), choose: $("choose-file"), input: $("file-input"), uploadStatus: $("upload-status"),
    report: $("report"), conversation: $("conversation"), empty: $("empty-chat"), suggestions: $("suggestions"),
    form: $("ask-form"), question: $("question"), ask: $("ask"), stop: $("stop"), announcer: $("announcer"),
    newConversation: $("new-conversation"),
  };

  const state = { dataset: null, filename: "", conversation: null, current: null };

  // ---------------------------------------------------------------- access token (when the server needs one)
  const params = new URLSearchParams(window.location.search);
  let token = params.get("token") || window.sessionStorage.getItem(TOKEN_KEY) || "";
  if (params.has("token")) {
    window.sessionStorage.setItem(TOKEN_KEY, token);
    window.history.replaceState(null, "", window.location.pathname);  // keep it out of the address bar
  }
  function authHeaders() { return token ? { Authorization: "Bearer " + token } : {}; }

  function announce(text) { els.announcer.textContent = ""; window.setTimeout(function () { els.announcer.textContent = text; }, 30); }

  // ---------------------------------------------------------------- numbers
  const whole = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const MINUS = "\u2212";
  function amount(value) {
    if (value === null || value === undefined) return "–";
    return (value < 0 ? MINUS : "") + whole.format(Math.abs(value));
  }
  function signed(value) {
    if (value === null || value === undefined) return "–";
    return (value > 0 ? "+" : value < 0 ? MINUS : "") + whole.format(Math.abs(value));
  }
  function compact(value, withSign) {
    if (value === null || value === undefined) return "–";
    const abs = Math.abs(value);
    const sign = value < 0 ? MINUS : (withSign && value > 0 ? "+" : "");
    if (abs >= 1e9) return sign + (abs / 1e9).toFixed(2) + "B";
    if (abs >= 1e6) return sign + (abs / 1e6).toFixed(2) + "M";
    if (abs >= 1e4) return sign + (abs / 1e3).toFixed(1) + "K";
    return sign + whole.format(abs);
  }
  function percent(value) {
    if (value === null || value === undefined) return "n/a";
    return (value > 0 ? "+" : value < 0 ? MINUS : "") + Math.abs(value).toFixed(1) + "%";
  }
  function capitalise(text) { return text ? text.charAt(0).toUpperCase() + text.slice(1) : text; }
  function typeName(type) { return capitalise(String(type || "unknown").replace(/_/g, " ")); }

  // ---------------------------------------------------------------- DOM helpers (text only)
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  function cell(tag, text, className) { return el(tag, className || "", text); }

  // ---------------------------------------------------------------- upload
  els.choose.addEventListener("click", function () { els.input.click(); });
  els.input.addEventListener("change", function () {
    if (els.input.files && els.input.files[0]) upload(els.input.files[0]);
    els.input.value = "";
  });
  ["dragenter", "dragover"].forEach(function (name) {
    els.dropzone.addEventListener(name, function (event) {
      event.preventDefault();
      els.dropzone.classList.add("dragging");
    });
  });
  ["dragleave", "dragend"].forEach(function (name) {
    els.dropzone.addEventListener(name, function () { els.dropzone.classList.remove("dragging"); });
  });
  els.dropzone.addEventListener("drop", function (event) {
    event.preventDefault();
    els.dropzone.classList.remove("dragging");
    const files = event.dataTransfer && event.dataTransfer.files;
    if (files && files[0]) upload(files[0]);
  });
  // A file dropped anywhere else must not make the browser leave the page.
  window.addEventListener("dragover", function (event) { event.preventDefault(); });
  window.addEventListener("drop", function (event) { event.preventDefault(); });

  function setUploadStatus(text, isError) {
    els.uploadStatus.textContent = text;
    els.uploadStatus.classList.toggle("error", Boolean(isError));
  }

  async function upload(file) {
    if (state.current) stopAnswer();
    setUploadStatus("Reading " + file.name + "…", false);
    els.choose.disabled = true;
    const body = new FormData();
    body.append("file", file, file.name);
    let response;
    let data;
    try {
      response = await fetch("/api/files", { method: "POST", body: body, headers: authHeaders() });
      data = await response.json().catch(function () { return { error: "The server answered HTTP " + response.status + "." }; });
    } catch (error) {
      setUploadStatus("I couldn't reach the server. Check that variance-bot web is running, then try again.", true);
      els.choose.disabled = false;
      return;
    }
    els.choose.disabled = false;
    if (!response.ok) {
      setUploadStatus(data.error || "The server refused the file (HTTP " + response.status + ").", true);
      return;
    }
    if (state.dataset && els.conversation.querySelector("article.answer")) {
      // Questions from here on are about the new file, in a new conversation.
      els.conversation.append(el("p", "file-divider", "Now analysing " + file.name));
    }
    state.dataset = data.dataset;
    state.filename = file.name;
    state.conversation = null;
    setUploadStatus("", false);
    els.dropzone.classList.add("compact");
    els.dropzone.querySelector(".dropzone-title").textContent = "Drop another file here to replace it";
    els.choose.textContent = "Replace file";
    renderReport(data.report);
    showReportChart(data.dataset);
    enableComposer();
    renderSuggestions(data.report);
    announce("File read. The summary is shown; you can ask questions now.");
    els.question.focus();
  }

  // ---------------------------------------------------------------- report summary
  function renderReport(report) {
    const root = els.report;
    root.replaceChildren();
    const source = report.source || {};
    const columns = report.columns || {};
    const counts = report.counts || {};
    const totals = report.totals || {};
    const refWord = columns.reference_kind || "budget";

    const sourceLine = el("p", "report-source");
    sourceLine.append(el("strong", "", source.filename || state.filename));
    const detected = [
      whole.format(source.data_rows || counts.rows || 0) + " rows",
      "actual = " + (columns.actual || "?"),
      refWord + " = " + (columns.reference || "?"),
    ];
    if (columns.period) detected.push("period = " + columns.period);
    sourceLine.append(document.createTextNode(" · " + detected.join(" · ")));
    root.append(sourceLine);

    const kpis = el("div", "kpis");
    const headline = report.headline || {};
    if (headline.measure === "effect_on_profit") {
      // A file mixing revenue and costs: its straight sum adds the two, so it is not shown as "the variance".
      // Lead with the effect on profit, then each account type's own variance (the report's headline rule).
      const good = headline.favourable === true;
      const verdict = typeof headline.favourable === "boolean" ? (good ? "Favourable" : "Unfavourable") : "";
      const adjective = { budget: "budgeted", plan: "planned", prior: "prior-period" }[refWord] || refWord;
      let detail = verdict;
      if (typeof headline.value_pct === "number") {
        detail += (detail ? ", " : "") + percent(headline.value_pct) + " of " + adjective + " profit";
      }
      const tile = kpi("Effect on profit", compact(headline.value, true), detail);
      if (verdict) tile.classList.add(good ? "good" : "bad");
      kpis.append(tile);
      (headline.parts || []).slice(0, 3).forEach(function (part) {
        const name = part.account_type === "expense" ? "Costs" : typeName(part.account_type);
        const partTile = kpi(name + " variance", compact(part.variance, true),
          signed(part.variance) + " (" + percent(part.variance_pct) + ")");
        if (typeof part.favourable === "boolean") partTile.classList.add(part.favourable ? "good" : "bad");
        kpis.append(partTile);
      });
    } else {
      kpis.append(kpi("Actual", compact(totals.actual), amount(totals.actual)));
      kpis.append(kpi(capitalise(refWord), compact(totals.reference), amount(totals.reference)));
      const varianceText = signed(totals.variance) + " (" + percent(totals.variance_pct) + ")";
      const tile = kpi("Variance", compact(totals.variance, true), varianceText);
      if (typeof report.favourable === "boolean") tile.classList.add(report.favourable ? "good" : "bad");
      kpis.append(tile);
    }
    root.append(kpis);
    root.append(el("div", "report-chart"));  // the bridge chart, once the server has drawn it

    if (Array.isArray(report.by_account_type) && report.by_account_type.length) {
      root.append(el("h3", "", "By account type"));
      const rows = report.by_account_type.map(function (row) {
        return [typeName(row.account_type), amount(row.actual), amount(row.reference), signed(row.variance),
          percent(row.variance_pct), row.favourable];
      });
      root.append(table(["Type", "Actual", capitalise(refWord), "Variance", "Var %", "F/U"], rows));
    }

    const drivers = report.top_drivers || {};
    const keys = drivers.by || columns.dimensions || [];
    [["Hurting profit most", drivers.unfavourable], ["Helping profit most", drivers.favourable]].forEach(function (pair) {
      const list = (pair[1] || []).filter(function (row) { return !row.more; }).slice(0, 5);
      if (!list.length) return;
      root.append(el("h3", "", pair[0]));
      root.append(table(["Line", "Variance", "Var %", "F/U"], list.map(function (row) {
        const label = keys.map(function (key) { return row[key]; }).filter(Boolean).join(" · ") || "(total)";
        return [label, signed(row.variance), percent(row.variance_pct), row.favourable, row.material];
      })));
    });

    const notes = [];
    if (counts.lines !== undefined) {
      notes.push(whole.format(counts.material || 0) + " of " + whole.format(counts.lines) + " lines are material" +
        (report.materiality ? " (" + materialityText(report.materiality) + ")" : "") + ".");
    }
    notes.push("F = favourable, U = unfavourable: revenue above " + refWord + " or costs below it is favourable.");
    if (counts.excluded_rows) notes.push(whole.format(counts.excluded_rows) + " total/subtotal rows were left out of the sums, so nothing is double-counted.");
    (report.warnings || []).slice(0, 4).forEach(function (warning) { notes.push(warning); });
    if (notes.length) {
      const list = el("ul", "report-notes");
      notes.forEach(function (note) { list.append(el("li", "", note)); });
      root.append(list);
    }
    root.hidden = false;
  }

  // The bridge chart beside the summary: asked for after the report is shown, so the numbers never wait for it.
  async function showReportChart(dataset) {
    let data;
    try {
      const response = await fetch("/api/files/" + encodeURIComponent(dataset) + "/chart", { headers: authHeaders() });
      if (!response.ok) return;  // nothing to chart (or the file is gone): the summary stands alone
      data = await response.json();
    } catch (error) {
      return;
    }
    const slot = els.report.querySelector(".report-chart");
    if (state.dataset !== dataset || !slot) return;  // another file was uploaded meanwhile
    slot.replaceChildren(chartFigure(data));
  }

  function materialityText(m) {
    const amountPart = "≥ " + whole.format(m.amount || 0);
    const percentPart = "≥ " + (m.percent || 0) + "%";
    if (m.mode === "amount") return amountPart;
    if (m.mode === "percent") return percentPart;
    return amountPart + (m.mode === "or" ? " or " : " and ") + percentPart;
  }

  function kpi(label, value, detail) {
    const tile = el("div", "kpi");
    tile.append(el("div", "kpi-label", label), el("div", "kpi-value", value));
    if (detail) tile.append(el("div", "kpi-detail", detail));
    return tile;
  }

  // rows: [label, ...numbers, favourable(bool|null), material(bool, optional)]. The last header is the F/U column:
  // F (favourable) or U (unfavourable), as variance reports write it, with the word for screen readers.
  function table(headers, rows) {
    const wrap = el("div", "table-wrap");
    const t = el("table");
    const head = el("thead");
    const headRow = el("tr");
    headers.forEach(function (name, index) {
      const th = cell("th", name, index > 0 && index < headers.length - 1 ? "num" : index === headers.length - 1 ? "verdict" : "");
      th.scope = "col";
      headRow.append(th);
    });
    head.append(headRow);
    const body = el("tbody");
    rows.forEach(function (row) {
      const tr = el("tr");
      const numbers = headers.length - 2;
      const favourable = row[numbers + 1];
      const label = cell("td", row[0]);
      if (row[numbers + 2] === true) label.append(document.createTextNode(" "), el("span", "badge material", "Material"));
      tr.append(label);
      for (let i = 1; i <= numbers; i += 1) {
        let className = "num";
        if (headers[i] === "Variance" && typeof favourable === "boolean") className += favourable ? " good" : " bad";
        tr.append(cell("td", row[i], className));
      }
      const verdict = el("td", "verdict");
      if (typeof favourable === "boolean") {
        const badge = el("span", "badge " + (favourable ? "good" : "bad"), favourable ? "F" : "U");
        badge.setAttribute("aria-hidden", "true");
        badge.title = favourable ? "Favourable" : "Unfavourable";
        verdict.append(badge, el("span", "visually-hidden", favourable ? "Favourable" : "Unfavourable"));
      }
      tr.append(verdict);
      body.append(tr);
    });
    t.append(head, body);
    wrap.append(t);
    return wrap;
  }

  function renderSuggestions(report) {
    const ideas = [];
    const drivers = (report.top_drivers || {});
    const keys = drivers.by || [];
    const worst = (drivers.unfavourable || []).filter(function (row) { return !row.more; })[0];
    const refWord = (report.columns || {}).reference_kind || "budget";
    if (worst) {
      const label = keys.map(function (key) { return worst[key]; }).filter(Boolean).join(" ");
      const revenue = /revenue/.test(String(worst.account_type)) && worst.account_type !== "contra_revenue";
      ideas.push("Why is " + label + (revenue ? " below " : " over ") + refWord + "?");
    }
    ideas.push("Summarise the variance by department");
    ideas.push("Which material lines need a comment for the board?");
    els.suggestions.replaceChildren();
    ideas.forEach(function (idea) {
      const button = el("button", "suggestion", idea);
      button.type = "button";
      button.addEventListener("click", function () { askQuestion(idea); });
      els.suggestions.append(button);
    });
    els.suggestions.hidden = false;
  }

  // ---------------------------------------------------------------- asking
  function enableComposer() {
    els.question.disabled = false;
    els.question.placeholder = "Ask about " + state.filename + ", e.g. why is marketing over budget in Q3?";
    els.ask.disabled = false;
  }

  els.form.addEventListener("submit", function (event) {
    event.preventDefault();
    askQuestion(els.question.value);
  });
  els.question.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      askQuestion(els.question.value);
    }
  });
  els.stop.addEventListener("click", function () { stopAnswer(); els.question.focus(); });
  els.newConversation.addEventListener("click", function () {
    if (state.current) stopAnswer();
    state.conversation = null;
    els.conversation.replaceChildren(els.empty);
    els.empty.hidden = false;
    els.newConversation.hidden = true;
    announce("New conversation.");
    els.question.focus();
  });

  function askQuestion(text) {
    const question = String(text || "").trim();
    if (!question || !state.dataset || state.current) return;
    els.question.value = "";
    els.empty.hidden = true;
    els.suggestions.hidden = true;
    const turn = {
      question: question, raw: "", es: null, finished: false, stopped: false, attempt: 0, received: false,
      rendering: false,
    };
    els.conversation.append(el("div", "question", question));
    const article = el("article", "answer");
    article.setAttribute("aria-label", "Answer");
    turn.body = el("div", "answer-body");
    turn.figures = el("div", "answer-figures");
    turn.tool = el("div", "tool-indicator");
    turn.tool.setAttribute("role", "status");
    turn.tool.append(el("span", "spinner"), el("span", "tool-label", "Thinking…"));
    turn.stateLine = el("p", "answer-state");
    turn.stateLine.hidden = true;
    article.append(turn.body, turn.figures, turn.tool, turn.stateLine);
    els.conversation.append(article);
    turn.article = article;
    state.current = turn;
    els.ask.disabled = true;
    els.stop.hidden = false;
    els.newConversation.hidden = false;
    announce("Answering…");
    connect(turn);
    article.scrollIntoView({ block: "nearest" });
  }

  function streamUrl(turn) {
    const query = new URLSearchParams({ message: turn.question, dataset: state.dataset });
    if (state.conversation) query.set("conversation", state.conversation);
    if (token) query.set("token", token);  // EventSource cannot send headers
    return "/api/chat/stream?" + query.toString();
  }

  // Named SSE events other than the contract's, shown under the answer: charts first.
  const EXTRA_EVENTS = { chart: showChart };

  function connect(turn) {
    turn.received = false;
    const es = new EventSource(streamUrl(turn));
    turn.es = es;
    es.onmessage = function (event) {
      const data = parse(event.data);
      if (!data) return;
      firstEvent(turn);
      if (typeof data.delta === "string") {
        turn.raw += data.delta;
        turn.tool.hidden = true;
        scheduleRender(turn);
      }
      if (data.done === true) {
        if (typeof data.conversation === "string") state.conversation = data.conversation;
        if (typeof data.final === "string") turn.raw = data.final;
        finish(turn, "done");
      }
    };
    es.addEventListener("tool", function (event) {
      const data = parse(event.data);
      if (!data) return;
      firstEvent(turn);
      if (data.status === "started") {
        setTool(turn, data.label || "Working on it…");
        announce(data.label || "Working on it…");
      } else if (data.status === "finished") {
        setTool(turn, "Thinking…");
      }
    });
    Object.keys(EXTRA_EVENTS).forEach(function (name) {
      es.addEventListener(name, function (event) {
        const data = parse(event.data);
        if (data) { firstEvent(turn); EXTRA_EVENTS[name](turn, data); }
      });
    });
    es.addEventListener("error", function (event) {
      if (turn.finished) return;
      if (event.data) {  // the server's own `event: error`: a readable message, and the stream is over
        const data = parse(event.data) || {};
        finish(turn, "error", data.error || "The answer failed.");
        return;
      }
      connectionLost(turn);
    });
  }

  function parse(text) {
    try { return JSON.parse(text); } catch (error) { return null; }
  }

  function firstEvent(turn) {
    if (turn.received) return;
    turn.received = true;
    if (turn.attempt > 0) {  // a retried answer replaces the partial text of the dropped one
      turn.raw = "";
      turn.figures.replaceChildren();
      turn.stateLine.hidden = true;
      scheduleRender(turn);
    }
  }

  function setTool(turn, label) {
    turn.tool.hidden = false;
    turn.tool.querySelector(".tool-label").textContent = label;
  }

  function scheduleRender(turn) {
    if (turn.rendering) return;
    turn.rendering = true;
    window.requestAnimationFrame(function () {
      turn.rendering = false;
      render(turn);
    });
  }

  function render(turn) {
    turn.body.innerHTML = md.render(turn.raw);  // markdown-it with raw HTML and links off: escaped text only
  }

  async function connectionLost(turn) {
    turn.es.close();
    if (turn.stopped || turn.finished) return;
    if (turn.attempt >= MAX_RETRIES) {
      finish(turn, "error", "I lost the connection to the server. Check that it is running, then ask again.");
      return;
    }
    const delay = Math.min(10000, 1000 * Math.pow(2, turn.attempt)) * (0.8 + Math.random() * 0.4);
    turn.attempt += 1;
    showState(turn, "Connection lost. Reconnecting in " + Math.max(1, Math.round(delay / 1000)) + " s…", false);
    turn.tool.hidden = true;
    await new Promise(function (resolve) { window.setTimeout(resolve, delay); });
    if (turn.stopped || turn.finished) return;
    try {
      // Ask whether the server still has the file before asking the question again.
      const check = await fetch("/api/files/" + encodeURIComponent(state.dataset), { headers: authHeaders() });
      if (check.status === 404 || check.status === 401 || check.status === 403) {
        const data = await check.json().catch(function () { return {}; });
        finish(turn, "error", data.error || "The server refused the question.");
        if (check.status === 404) state.dataset = null;
        return;
      }
    } catch (error) {
      connectionLost(turn);  // still unreachable: back off further
      return;
    }
    showState(turn, "Reconnected. Asking again…", false);
    connect(turn);
  }

  function showState(turn, text, isError) {
    turn.stateLine.textContent = text;
    turn.stateLine.classList.toggle("error", Boolean(isError));
    turn.stateLine.hidden = false;
  }

  function stopAnswer() {
    const turn = state.current;
    if (!turn) return;
    turn.stopped = true;
    finish(turn, "stopped");
  }

  function finish(turn, how, message) {
    if (turn.finished) return;
    turn.finished = true;
    if (turn.es) turn.es.close();  // after done or error: never let EventSource ask again by itself
    turn.tool.hidden = true;
    render(turn);
    if (how === "done") {
      turn.stateLine.hidden = true;
      turn.article.dataset.state = "done";
      announce("Answer complete.");
    } else if (how === "stopped") {
      showState(turn, "Stopped.", false);
      turn.article.dataset.state = "stopped";
      announce("Stopped.");
    } else {
      showState(turn, message, true);
      turn.article.dataset.state = "error";
      announce(message);
    }
    state.current = null;
    const stopHadFocus = document.activeElement === els.stop;
    els.stop.hidden = true;
    els.ask.disabled = !state.dataset;
    if (!state.dataset) {
      els.question.disabled = true;
      els.question.placeholder = "Upload the file again to continue";
    }
    if (stopHadFocus) els.question.focus();
  }

  function showChart(turn, data) {
    const figure = chartFigure(data);
    if (figure) turn.figures.append(figure);
  }

  function chartFigure(data) {
    const url = typeof data.url === "string" ? data.url : "";
    if (!/^\/(?![\/\\])/.test(url)) return null;  // same-origin paths only (not //host or /\host)
    const figure = el("figure", "chart");
    const img = el("img");
    img.alt = typeof data.alt === "string" ? data.alt : "Chart";
    img.width = 800;
    img.height = 450;
    img.src = token ? url + (url.indexOf("?") < 0 ? "?" : "&") + "token=" + encodeURIComponent(token) : url;
    figure.append(img);
    if (typeof data.caption === "string") figure.append(el("figcaption", "", data.caption));
    return figure;
  }
})();
