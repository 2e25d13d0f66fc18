// Render the API reference from this server's own OpenAPI document. Relative URLs, so the page
// also works when a reverse proxy serves the API under a path prefix.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: new URL("openapi.json", document.baseURI).href,
    dom_id: "#swagger-ui",
    deepLinking: true,
    tryItOutEnabled: true,
    // No validator badge: it would send the document to an outside service.
    validatorUrl: null,
  });
});
