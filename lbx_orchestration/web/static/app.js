// lbx page: plain DOM, no framework, nothing fetched from elsewhere. Every text from the API
// goes in through textContent, never as HTML.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { user: null, meta: null, film: null };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function say(message, isError = false) {
  const status = $("#status");
  status.textContent = message;
  status.classList.toggle("error", isError);
}

async function api(path, options) {
  const response = await fetch(path, options);
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  if (!response.ok) {
    const message = (body && body.error) || `${response.status} ${response.statusText}`;
    throw new Error(message);
  }
  return body;
}

function picture(film) {
  if (film.poster_url) {
    return el("img", { class: "poster", src: film.poster_url, alt: `Poster of ${film.title}`, loading: "lazy" });
  }
  // offline: a text card in place of the poster
  return el("div", { class: "textcard", "aria-hidden": "true" },
    el("span", { class: "t", text: film.title }), el("span", { class: "y", text: film.year ?? "" }));
}

function card(film, { rank = null, reason = null, extra = null } = {}) {
  const title = el("h3", {}, rank ? el("span", { class: "rank", text: `${rank}.` }) : null,
    document.createTextNode(`${film.title}${film.year ? ` (${film.year})` : ""}`));
  const links = el("div", { class: "links" },
    el("button", { type: "button", class: "secondary", "data-film": film.tmdb_id,
      "aria-label": `About ${film.title}`, text: "About", onclick: () => showFilm(film.tmdb_id) }),
    el("button", { type: "button", class: "secondary", "data-similar": film.tmdb_id,
      "aria-label": `More like ${film.title}`, text: "More like this",
      onclick: () => showSimilar(film) }),
    el("a", { href: film.letterboxd_url, target: "_blank", rel: "noopener", text: "Letterboxd" }));
  return el("li", { class: "card", "data-tmdb-id": film.tmdb_id }, picture(film),
    el("div", { class: "body" }, title,
      film.seen ? el("p", { class: "seen", text: "✓ You have seen this" }) : null,
      film.genres && film.genres.length ? el("p", { class: "meta", text: film.genres.join(" · ") }) : null,
      reason ? el("p", { class: "reason", text: reason }) : null,
      extra ? el("p", { class: "meta", text: extra }) : null,
      links));
}

function filterParams() {
  const params = new URLSearchParams();
  const form = $("#filters");
  for (const [key, value] of new FormData(form).entries()) if (value !== "") params.set(key, value);
  return params;
}

function renderRecommendations(body) {
  const list = $("#rec-list");
  list.replaceChildren(...body.recommendations.map((r) => card(r, { rank: r.rank, reason: r.reason })));
  const heading = $("#results-heading");
  heading.hidden = false;
  heading.textContent = `${body.count} films for ${body.username}`;
  const csv = $("#csv-link");
  csv.href = `/api/users/${encodeURIComponent(body.username)}/recommendations.csv?${filterParams()}`;
  csv.setAttribute("download", `lbx-${body.username}.csv`);
}

function renderNewFilms(films) {
  $("#new-list").replaceChildren(...films.map((f) =>
    card(f, { rank: f.rank, reason: f.reason, extra: f.release_date ? `Released ${f.release_date}` : null })));
  $("#new-films").hidden = films.length === 0;
}

async function fillNewFilms(username) {
  try {
    const body = await api(`/api/users/${encodeURIComponent(username)}/new`);
    renderNewFilms(body.films);
  } catch {
    renderNewFilms([]);
  }
}

async function fillLists(username) {
  const select = $("#f-list");
  select.replaceChildren(el("option", { value: "", text: "Any film" }));
  try {
    const body = await api(`/api/users/${encodeURIComponent(username)}/lists`);
    for (const l of body.lists) select.append(el("option", { value: l.slug, text: `${l.name} (${l.films})` }));
  } catch { /* no lists */ }
}

async function loadUser(username, { keepFilters = false } = {}) {
  if (!username) return;
  say(`Loading ${username}…`);
  const params = keepFilters ? filterParams() : new URLSearchParams({ limit: $("#f-limit").value || "20" });
  try {
    const body = await api(`/api/users/${encodeURIComponent(username)}/recommendations?${params}`);
    state.user = body.username;
    if (!keepFilters) await Promise.all([fillLists(body.username), fillNewFilms(body.username)]);
    $("#filters-panel").hidden = false;
    renderRecommendations(body);
    say(body.count ? `Model ${body.model}, ${body.count} films.` : "No film matches these filters.");
    rememberView();
  } catch (err) {
    say(err.message, true);
  }
}

// The view (member, filters, watchlist choice, open film) lives in the query string, so a link
// to it can be shared and a reload shows it again.
function rememberView() {
  const params = state.user ? filterParams() : new URLSearchParams();
  if (state.user) params.set("user", state.user);
  if (params.get("watchlist") === "exclude") params.delete("watchlist");
  if (params.get("basis") === "all") params.delete("basis");
  if (params.get("limit") === "20") params.delete("limit");
  if (state.film) params.set("film", state.film);
  const query = params.toString();
  history.replaceState(null, "", query ? `?${query}` : location.pathname);
}

function restoreFilters(params) {
  for (const field of $("#filters").elements) {
    if (field.name && params.has(field.name)) field.value = params.get(field.name);
  }
}

async function restoreView() {
  const params = new URLSearchParams(location.search);
  const user = params.get("user");
  if (user) {
    $("#username").value = user;
    await Promise.all([fillLists(user), fillNewFilms(user)]);
    restoreFilters(params);
    await loadUser(user, { keepFilters: true });
  }
  const film = Number(params.get("film"));
  if (film > 0) await showFilm(film);
}

async function showFilm(tmdbId) {
  try {
    const film = await api(`/api/films/${tmdbId}`);
    const params = new URLSearchParams({ limit: "8" });
    if (state.user) params.set("username", state.user);
    const similar = await api(`/api/films/${tmdbId}/similar?${params}`).catch(() => ({ results: [] }));
    $("#film-heading").textContent = `${film.title}${film.year ? ` (${film.year})` : ""}`;
    const facts = [film.runtime ? `${film.runtime} min` : null, film.genres.join(" · ") || null,
      film.original_title && film.original_title !== film.title ? `original title: ${film.original_title}` : null];
    $("#film-facts").textContent = facts.filter(Boolean).join(" — ");
    $("#film-overview").textContent = film.overview || "No overview in lbx's TMDb metadata.";
    const people = [film.directors.length ? `Directed by ${film.directors.join(", ")}` : null,
      film.cast.length ? `With ${film.cast.slice(0, 8).join(", ")}` : null];
    $("#film-people").textContent = people.filter(Boolean).join(". ");
    $("#film-where").textContent = film.providers === null
      ? "Where to watch: needs TMDb online (TMDB_API_KEY)."
      : film.providers.length ? `Streaming in ${film.provider_country} on ${film.providers.join(", ")}`
        : `Not streaming in ${film.provider_country} according to TMDb.`;
    $("#film-letterboxd").href = film.letterboxd_url;
    $("#film-tmdb").href = film.tmdb_url;
    $("#film-similar-heading").textContent = state.user ? `More like this, none you have seen` : "More like this";
    $("#film-similar").replaceChildren(...similar.results.map((f) => card(f)));
    state.film = film.tmdb_id;
    rememberView();
    const section = $("#film");
    section.hidden = false;
    section.focus();
    section.scrollIntoView({ behavior: "smooth", block: "start" });
  } catch (err) {
    say(err.message, true);
  }
}

$("#film-close").addEventListener("click", () => {
  $("#film").hidden = true;
  state.film = null;
  rememberView();
});

async function showSimilar(film) {
  const section = $("#similar");
  try {
    const params = new URLSearchParams({ limit: "8" });
    if (state.user) params.set("username", state.user);
    const body = await api(`/api/films/${film.tmdb_id}/similar?${params}`);
    $("#similar-heading").textContent = `More like ${film.title}`;
    $("#similar-list").replaceChildren(...body.results.map((f) => card(f)));
    section.hidden = false;
    section.focus();
    section.scrollIntoView({ behavior: "smooth", block: "start" });
  } catch (err) {
    say(err.message, true);
  }
}

async function init() {
  try {
    const meta = await api("/api/meta");
    state.meta = meta;
    for (const g of meta.genres) $("#f-genre").append(el("option", { value: g, text: g }));
    for (const d of meta.decades) $("#f-decade").append(el("option", { value: d, text: d === "pre_1950" ? "before 1950" : d }));
    for (const m of meta.letterboxd_members) $("#members").append(el("option", { value: m }));
    for (const p of meta.providers) $("#providers").append(el("option", { value: p }));
    const provider = $("#f-provider");
    if (meta.providers_available) {
      provider.placeholder = `e.g. ${meta.providers[0] || "Netflix"} (${meta.provider_country})`;
    } else {  // offline: TMDb's watch/providers data is missing, so the filter cannot work
      provider.disabled = true;
      provider.placeholder = "TMDb offline";
      provider.title = "Streaming providers come from TMDb: set TMDB_API_KEY and refresh tmdb_movies";
    }
    const models = await api("/api/models").catch(() => null);
    if (models && models.served) {
      $("#model-line").textContent = `served model ${models.served.model} (NDCG@10 ${models.served.ndcg_at_10.toFixed(3)})`;
    }
  } catch (err) {
    say(err.message, true);
  }
  await restoreView();
}

$("#user-form").addEventListener("submit", (event) => {
  event.preventDefault();
  $("#filters").reset();
  loadUser($("#username").value.trim());
});

$("#filters").addEventListener("submit", (event) => {
  event.preventDefault();
  if (state.user) loadUser(state.user, { keepFilters: true });
});
$("#filters").addEventListener("reset", () => {
  setTimeout(() => { if (state.user) loadUser(state.user, { keepFilters: true }); }, 0);
});

$("#upload-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const button = form.querySelector("button");
  const data = new FormData(form);
  if (!data.get("username")) data.delete("username");
  if (!data.get("member_key")) data.delete("member_key");
  button.disabled = true;
  say("Importing your export and folding you into the model…");
  try {
    const body = await api("/api/imports", { method: "POST", body: data });
    $("#username").value = body.username;
    state.user = body.username;
    $("#upload-key").value = "";
    $("#member-key-box").hidden = !body.member_key;
    $("#member-key").textContent = body.member_key || "";
    await fillLists(body.username);
    $("#filters-panel").hidden = false;
    renderRecommendations({ ...body, count: body.recommendations.length });
    renderNewFilms(body.new_films || []);
    const tv = body.tv_entries ? `; ${body.tv_entries} TV ${body.tv_entries === 1 ? "entry" : "entries"} counted apart` : "";
    const matched = `${body.distinct_matched} of ${body.distinct_films} films matched to TMDb${tv}`;
    say(body.note ? `Imported ${body.username} (${matched}), but: ${body.note}`
      : `Imported ${body.username}: ${matched} (${body.status}).`);
    $("#results").focus();
  } catch (err) {
    say(`Upload refused: ${err.message}`, true);
  } finally {
    button.disabled = false;
  }
});

$("#search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const q = $("#q").value.trim();
  if (!q) return;
  try {
    const params = new URLSearchParams({ q, limit: "12" });
    if (state.user) params.set("username", state.user);
    const body = await api(`/api/films/search?${params}`);
    $("#search-list").replaceChildren(...body.results.map((f) =>
      card(f, { extra: f.directors && f.directors.length ? `Directed by ${f.directors.join(", ")}` : null })));
    say(body.count ? `${body.count} films for “${q}”.` : `Nothing found for “${q}”.`);
  } catch (err) {
    say(err.message, true);
  }
});

init();

// --- a guest: no export, a few typed films; nothing is kept --------------------------------
function matchLine(m) {
  if (!m.tmdb_id) return `${m.input}: not found${m.suggestion ? ` (nearest: ${m.suggestion})` : ""}`;
  const name = `${m.title}${m.year ? ` (${m.year})` : ""}`;
  const unused = m.counted ? "" : (m.in_model ? ", not in the chosen basis" : ", unknown to the model");
  return `${m.input} → ${name}, confidence ${Math.round(m.confidence * 100)}%${unused}`;
}

function renderGuest(body) {
  $("#guest-matches").replaceChildren(...(body.matches || []).map((m) =>
    el("li", { class: m.tmdb_id ? (m.counted ? "found" : "unused") : "missing", text: matchLine(m) })));
  const recs = body.recommendations || [];
  $("#guest-list-heading").textContent = recs.length ? `${recs.length} films for you` : "";
  $("#guest-list").replaceChildren(...recs.map((r) => card(r, { rank: r.rank, reason: r.reason })));
  $("#guest-result").hidden = false;
}

$("#guest-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = event.currentTarget.querySelector("button");
  const films = $("#guest-films").value.split("\n").map((line) => line.trim()).filter(Boolean);
  if (!films.length) return;
  button.disabled = true;
  say(`Matching ${films.length} films and folding them into the model…`);
  try {
    const response = await fetch("/api/guest", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ films, basis: $("#guest-basis").value }),
    });
    let body = null;
    try { body = await response.json(); } catch { /* not JSON */ }
    if (body && body.matches) renderGuest(body);
    if (!response.ok) throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
    const missing = body.not_found.length ? `; not found: ${body.not_found.join(", ")}` : "";
    say(`${body.count} films from ${body.counted} of yours (model ${body.model})${missing}.`);
    $("#guest-list-heading").focus();
  } catch (err) {
    say(`No list: ${err.message}`, true);
  } finally {
    button.disabled = false;
  }
});
