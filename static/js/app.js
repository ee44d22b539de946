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
})();
