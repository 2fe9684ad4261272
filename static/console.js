// The operator console's only script of its own. The server sends something on
// /events at least every half second, so silence for CONTACT_LOST_MS means this page
// lost its machine (dead, frozen or cut off): say so instead of staying green.
(() => {
  const CONTACT_LOST_MS = 2000;
  htmx.config.sse = { reconnectDelay: 500, reconnectMaxDelay: 2000, reconnectJitter: 0.2, pauseOnBackground: false };
  let lastHeard = Date.now();
  document.addEventListener("htmx:sse:after:message", () => {
    lastHeard = Date.now();
    document.body.classList.remove("lost");
  });
  setInterval(() => {
    if (Date.now() - lastHeard > CONTACT_LOST_MS) document.body.classList.add("lost");
  }, 250);
  // Copy buttons (the network key): the value sits in the element the button names.
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const source = document.getElementById(button.dataset.copy);
    if (!source) return;
    navigator.clipboard?.writeText(source.value ?? source.textContent).then(
      () => (button.textContent = "Copied"),
      () => (button.textContent = "Select and copy by hand"),
    );
  });
})();
