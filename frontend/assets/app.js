// Shows the server's readiness until the studio UI lands.
const out = document.getElementById("ready");
fetch("/readyz")
  .then((r) => r.json())
  .then((body) => { out.textContent = JSON.stringify(body, null, 2); })
  .catch((err) => { out.textContent = "could not reach the server: " + err.message; });
