// Starts Swagger UI on /api/v1/docs from the settings the page embeds as JSON
// (kept out of inline script so the Content-Security-Policy needs no exception).
(function () {
  "use strict";
  var settings = JSON.parse(document.getElementById("swagger-settings").textContent);
  settings.dom_id = "#swagger-ui";
  settings.presets = [SwaggerUIBundle.presets.apis];
  window.ui = SwaggerUIBundle(settings);
})();
