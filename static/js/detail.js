// The execution detail page: step selection, JSON search, and live updates while a run goes on.
// Everything here is an enhancement: with JavaScript off the page works by plain links.
(function () {
  "use strict";

  function fragment(html) {
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content;
  }

  function process(el) {
    if (window.htmx && el) window.htmx.process(el);
  }

  // ---- Selecting a step: mark its card (the inspector is swapped by htmx) ----
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("[data-select-step]");
    if (!link) return;
    var card = link.closest(".step");
    if (!card) return;
    document.querySelectorAll(".step.is-selected").forEach(function (el) {
      el.classList.remove("is-selected");
    });
    card.classList.add("is-selected");
  });

  // ---- JSON viewer: search, expand and collapse ----
  function setupJson(root) {
    (root || document).querySelectorAll("[data-json-tools]").forEach(function (tools) {
      if (tools.dataset.ready) return;
      tools.dataset.ready = "1";
      tools.hidden = false;
      var pane = tools.closest(".panel") || document;
      var box = pane.querySelector("[data-json-box]");
      if (!box) return;
      var input = tools.querySelector("[data-json-search]");
      var counter = tools.querySelector("[data-json-hits]");
      var hits = [];
      var current = -1;
      var timer = null;

      function clear() {
        hits.forEach(function (line) { line.classList.remove("hit", "hit-current"); });
        hits = [];
        current = -1;
      }

      function openAncestors(line) {
        var node = line.parentElement;
        while (node && node !== box) {
          if (node.tagName === "DETAILS") node.open = true;
          node = node.parentElement;
        }
      }

      function focusHit(index) {
        if (!hits.length) return;
        if (current >= 0) hits[current].classList.remove("hit-current");
        current = (index + hits.length) % hits.length;
        var line = hits[current];
        openAncestors(line);
        line.classList.add("hit-current");
        line.scrollIntoView({ block: "center" });
        counter.textContent = (current + 1) + " of " + hits.length;
      }

      function search() {
        clear();
        var query = input.value.trim().toLowerCase();
        if (!query) { counter.textContent = ""; return; }
        box.querySelectorAll(".jl").forEach(function (line) {
          if (line.textContent.toLowerCase().indexOf(query) !== -1) {
            line.classList.add("hit");
            hits.push(line);
          }
        });
        counter.textContent = hits.length ? hits.length + " found" : "no match";
        if (hits.length) focusHit(0);
      }

      input.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(search, 150);
      });
      input.addEventListener("keydown", function (event) {
        if (event.key === "Enter") {
          event.preventDefault();
          if (!hits.length) search();
          else focusHit(current + (event.shiftKey ? -1 : 1));
        } else if (event.key === "Escape") {
          input.value = "";
          search();
        }
      });
      tools.querySelector("[data-json-expand]").addEventListener("click", function () {
        box.querySelectorAll("details.jd").forEach(function (d) { d.open = true; });
      });
      tools.querySelector("[data-json-collapse]").addEventListener("click", function () {
        // Keep the outermost node open so the keys of the top level stay visible.
        box.querySelectorAll("details.jd details.jd").forEach(function (d) { d.open = false; });
      });
    });
  }

  // ---- Live updates: server-sent events, with polling where they cannot get through ----
  function Live(run) {
    this.run = run;
    this.url = run.dataset.stream;
    this.cursor = null;
    this.source = null;
    this.failures = 0;
    this.pollTimer = null;
    this.ended = false;
  }

  Live.prototype.start = function () {
    if (window.EventSource) this.connect();
    else this.poll();
  };

  Live.prototype.connect = function () {
    var self = this;
    var source = new EventSource(this.url);
    this.source = source;
    source.addEventListener("open", function () { self.failures = 0; });
    ["step", "regions", "done"].forEach(function (name) {
      source.addEventListener(name, function (event) {
        self.failures = 0;
        self.handle(name, event.data, event.lastEventId);
      });
    });
    source.addEventListener("error", function () {
      if (self.ended) return;
      self.failures += 1;
      // EventSource retries by itself; after a few failures in a row the stream is not
      // getting through (a buffering proxy, a server without streaming): poll instead.
      if (self.failures >= 3 || source.readyState === EventSource.CLOSED) {
        source.close();
        self.source = null;
        self.poll();
      }
    });
  };

  Live.prototype.poll = function () {
    var self = this;
    if (this.ended) return;
    var match = /[?&]after=(\d+)/.exec(this.url);
    var after = this.cursor !== null ? this.cursor : match ? match[1] : null;
    var url = this.url.split("?")[0] + "?once=1" + (after !== null ? "&after=" + after : "");
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/event-stream" } })
      .then(function (response) { return response.ok ? response.text() : ""; })
      .then(function (text) { self.parse(text); })
      .catch(function () { /* try again at the next tick */ })
      .then(function () {
        if (!self.ended) self.pollTimer = setTimeout(function () { self.poll(); }, 1000);
      });
  };

  // A minimal reader of the event-stream format, for the polling fallback.
  Live.prototype.parse = function (text) {
    var self = this;
    text.split(/\n\n/).forEach(function (block) {
      var name = "message", data = [], id = null;
      block.split("\n").forEach(function (line) {
        if (line.indexOf("event: ") === 0) name = line.slice(7);
        else if (line.indexOf("data: ") === 0) data.push(line.slice(6));
        else if (line === "data:") data.push("");
        else if (line.indexOf("id: ") === 0) id = line.slice(4);
      });
      if (name !== "message") self.handle(name, data.join("\n"), id);
    });
  };

  Live.prototype.handle = function (name, data, id) {
    if (id !== null && id !== undefined && id !== "") this.cursor = id;
    if (name === "step") this.step(data);
    else if (name === "regions") this.regions(data);
    else if (name === "done") this.done();
  };

  Live.prototype.step = function (html) {
    var card = fragment(html).firstElementChild;
    if (!card || !card.id) return;
    var existing = document.getElementById(card.id);
    if (existing) {
      if (existing.classList.contains("is-selected")) card.classList.add("is-selected");
      existing.replaceWith(card);
      process(card);
      return;
    }
    var list = document.getElementById("timeline-steps");
    // Only when the timeline shows its tail: otherwise "Load more" brings the step in order.
    if (!list || document.getElementById("timeline-more")) return;
    list.querySelectorAll(".timeline-empty").forEach(function (el) { el.remove(); });
    card.classList.add("is-new");
    list.appendChild(card);
    process(card);
    // While nobody has picked a step, the inspector follows the newest screenshot.
    var inspector = document.getElementById("inspector");
    var thumb = card.querySelector(".step-thumb-link");
    if (inspector && inspector.hasAttribute("data-follow") && thumb && window.htmx) {
      window.htmx.ajax("GET", thumb.getAttribute("hx-get"), { target: "#inspector", swap: "outerHTML" });
    }
  };

  Live.prototype.regions = function (html) {
    var nodes = fragment(html).children;
    Array.prototype.slice.call(nodes).forEach(function (node) {
      if (!node.id) return;
      var existing = document.getElementById(node.id);
      if (existing) {
        // A region with an unchanged data-key is already right; replacing it would close
        // what the user has open in it (the approval popover) and drop what they typed.
        if (node.dataset.key && existing.dataset.key === node.dataset.key) return;
        existing.replaceWith(node);
        process(node);
      }
    });
  };

  Live.prototype.done = function () {
    if (this.ended) return;
    this.ended = true;
    if (this.source) this.source.close();
    clearTimeout(this.pollTimer);
    this.run.removeAttribute("data-stream");
    this.refresh();
  };

  // The run has ended: what the stream does not carry changed too (the waterfall's
  // scale and every bar, the Artifacts count, a Diff tab, the output). The pane is
  // fetched again as the tab links fetch it. On the Form and Notes tabs only the tab
  // bar is replaced, so nothing half-typed is lost.
  Live.prototype.refresh = function () {
    var self = this;
    var pane = document.getElementById("pane");
    if (!pane) { self.run.dataset.ended = "1"; return; }
    var keep = pane.dataset.tab === "form" || pane.dataset.tab === "notes";
    fetch(window.location.href, {
      credentials: "same-origin",
      headers: { "HX-Request": "true", "HX-Target": "pane", "HX-Current-URL": window.location.href }
    })
      .then(function (response) { return response.ok ? response.text() : ""; })
      .then(function (html) {
        var fresh = html && fragment(html).querySelector("#pane");
        if (!fresh) return;
        var current = document.getElementById("pane");
        if (!current) return;
        if (keep) {
          var nav = current.querySelector("nav.tabs");
          var freshNav = fresh.querySelector("nav.tabs");
          if (nav && freshNav) { nav.replaceWith(freshNav); process(freshNav); }
        } else {
          current.replaceWith(fresh);
          process(fresh);
          setupJson(fresh);
        }
      })
      .catch(function () { /* the page is still right up to the end; a reload shows the rest */ })
      .then(function () { self.run.dataset.ended = "1"; });
  };

  // ---- "so far": the running time ticks in the browser between server updates ----
  function duration(ms) {
    if (ms < 1000) return Math.round(ms) + " ms";
    var seconds = ms / 1000;
    if (seconds < 60) return seconds < 10 ? seconds.toFixed(1) + " s" : Math.floor(seconds) + " s";
    var minutes = Math.floor(seconds / 60), sec = Math.floor(seconds % 60);
    function two(n) { return (n < 10 ? "0" : "") + n; }
    if (minutes < 60) return minutes + " m " + two(sec) + " s";
    var hours = Math.floor(minutes / 60);
    if (hours < 48) return hours + " h " + two(minutes % 60) + " m";
    return Math.floor(hours / 24) + " d " + two(hours % 24) + " h";
  }

  // Each element says how long the run had been going when the server rendered it;
  // the browser adds its own clock since then (no clock skew between the two).
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-elapsed-ms]").forEach(function (el) {
      if (!el.renderedAt) el.renderedAt = now;
      var ms = parseInt(el.dataset.elapsedMs, 10) + (now - el.renderedAt);
      if (!isNaN(ms)) el.textContent = duration(ms) + " so far";
    });
  }

  function init() {
    setupJson(document);
    var run = document.getElementById("run");
    // A queued run gets its "so far" when it starts (a live region update): tick anyway.
    if (document.querySelector("[data-elapsed-ms]") || (run && run.dataset.stream)) {
      setInterval(tick, 1000);
    }
    if (run && run.dataset.stream && !run.live) {
      run.live = new Live(run);
      run.live.start();
    }
  }

  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:afterSettle", function (event) { setupJson(event.target); });
})();
