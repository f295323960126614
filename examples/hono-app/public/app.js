// The front end: sign in for a token, then list and add notes through the API.
let token = sessionStorage.getItem("token");

const api = async (path, init = {}) => {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(path, { ...init, headers });
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return res.json();
};

async function refresh() {
  const list = document.querySelector("#notes");
  list.replaceChildren(
    ...(await api("/api/notes")).map((n) => Object.assign(document.createElement("li"), { textContent: n.text })),
  );
}

function signedIn() {
  document.querySelector("#login").hidden = true;
  document.querySelector("#add").hidden = false;
  return refresh();
}

document.querySelector("#login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const user = new FormData(e.target).get("user");
  ({ token } = await api("/api/login", { method: "POST", body: JSON.stringify({ user }) }));
  sessionStorage.setItem("token", token);
  await signedIn();
});

document.querySelector("#add").addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = new FormData(e.target).get("text");
  await api("/api/notes", { method: "POST", body: JSON.stringify({ text }) });
  e.target.reset();
  await refresh();
});

if (token) signedIn();
