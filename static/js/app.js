// Runboard's small amount of page behaviour. No inline handlers: the CSP forbids them.
(function () {
  "use strict";

  // Times are shown in the browser's own zone: tell the server which one it is.
  try {
    var tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (tz && document.cookie.indexOf("tz=" + encodeURIComponent(tz)) === -1) {
      document.cookie = "tz=" + encodeURIComponent(tz) + "; path=/; max-age=31536000; samesite=lax";
    }
  } catch (e) { /* old browsers keep the server's zone */ }

  // The table may then send its rows before an expensive total and let htmx fetch
  // the total; without this cookie (no JavaScript) it counts before answering.
  if (document.cookie.indexOf("js=1") === -1) {
    document.cookie = "js=1; path=/; max-age=31536000; samesite=lax";
  }

  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches && el.matches("select[data-autosubmit]")) {
      el.form.requestSubmit ? el.form.requestSubmit() : el.form.submit();
    }
  });

  // Copy buttons: <button data-copy="text"> or data-copy-target="#id".
  document.addEventListener("click", function (event) {
    var btn = event.target.closest && event.target.closest("[data-copy], [data-copy-target]");
    if (!btn) return;
    var text = btn.getAttribute("data-copy");
    if (text === null) {
      var target = document.querySelector(btn.getAttribute("data-copy-target"));
      text = target ? target.textContent : "";
    }
    if (navigator.clipboard) {
      navigator.clipboard.writeText(text).then(function () {
        var old = btn.textContent;
        btn.textContent = "Copied";
        setTimeout(function () { btn.textContent = old; }, 1200);
      });
    }
  });
  // An expensive total comes after the rows: the placeholder names its URL
  // (data-late-total, part=total) and the answer replaces the total and the pager by
  // id. Fetched here rather than by htmx because a count made obsolete by the next
  // filter, sort or page must be dropped quietly, and htmx reports each aborted
  // request and each out-of-band target that is gone as a console error.
  var counting = null;
  function fetchLateTotal() {
    var el = document.querySelector("[data-late-total]:not([data-late-total-sent])");
    if (!el) return;
    el.setAttribute("data-late-total-sent", "");
    if (counting) counting.abort();
    var controller = window.AbortController ? new AbortController() : null;
    counting = controller;
    var url = el.getAttribute("data-late-total");
    fetch(url, {
      headers: { "HX-Request": "true" },
      credentials: "same-origin",
      signal: controller ? controller.signal : undefined
    }).then(function (response) {
      if (!response.ok) throw new Error(response.status);
      return response.text();
    }).then(function (html) {
      var template = document.createElement("template");
      template.innerHTML = html;
      Array.prototype.slice.call(template.content.children).forEach(function (fresh) {
        var current = fresh.id && document.getElementById(fresh.id);
        if (!current) return;  // the table has moved on: this count is not its own
        fresh.removeAttribute("hx-swap-oob");
        current.replaceWith(fresh);
        if (window.htmx) window.htmx.process(fresh);
      });
    }).catch(function (error) {
      if (error && error.name === "AbortError") return;
      // Counting failed (timeout, server error): offer the counted page instead.
      if (!document.body.contains(el)) return;
      var link = document.createElement("a");
      link.href = url;
      link.textContent = "Count the executions";
      el.classList.remove("is-counting");
      el.replaceChildren(link);
    });
  }
  document.addEventListener("DOMContentLoaded", fetchLateTotal);
  document.addEventListener("htmx:afterSettle", fetchLateTotal);
  document.addEventListener("htmx:beforeRequest", function (event) {
    // A new table request makes the pending count obsolete.
    var target = event.detail && event.detail.target;
    if (counting && target && target.id === "results") counting.abort();
  });
})();
