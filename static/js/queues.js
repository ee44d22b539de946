// Review page: renew the claim while the page is open, and keyboard shortcuts.
// Without this file the page still works: the lock is long and submitting renews it.
(function () {
  "use strict";
  var form = document.getElementById("review-form");
  if (!form) return;
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var every = parseInt(form.dataset.renewEvery, 10) * 1000;
  var note = document.getElementById("lock-note");
  function renew() {
    fetch(form.dataset.renewUrl, {
      method: "POST",
      headers: { "X-CSRFToken": csrf },
      credentials: "same-origin",
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok && note) note.textContent = body.error || "Your claim lapsed.";
      });
    }).catch(function () { /* offline: the next ping or the submit renews */ });
  }
  if (every > 0) setInterval(renew, every);
  function press(id) { var b = document.getElementById(id); if (b) b.click(); }
  document.addEventListener("keydown", function (e) {
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter") { e.preventDefault(); press("submit-next"); }
    else if (e.altKey && (e.key === "k" || e.key === "K")) { e.preventDefault(); press("skip"); }
  });
  // Typing a corrected value marks the field corrected.
  form.addEventListener("input", function (e) {
    var m = /^x-(\d+)$/.exec(e.target.name || "");
    if (!m) return;
    var radio = form.querySelector('input[name="v-' + m[1] + '"][value="corrected"]');
    if (radio) radio.checked = true;
  });
})();
