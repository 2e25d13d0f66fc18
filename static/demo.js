// The demo page: score the phrase with both models and draw each label's probability as a bar.
// Plain browser JavaScript, no build step; the API is reached by URLs relative to this page.
"use strict";

const form = document.getElementById("form");
const box = document.getElementById("query");
const sections = Array.from(document.querySelectorAll(".model"));

function clear(section) {
  section.querySelector(".verdict").textContent = "";
  section.querySelector(".bars").replaceChildren();
  const error = section.querySelector(".error");
  error.textContent = "";
  error.hidden = true;
}

function showError(section, text) {
  const error = section.querySelector(".error");
  error.textContent = text;
  error.hidden = false;
}

function showAnswer(section, answer) {
  const percent = (p) => (100 * p).toFixed(1) + "%";
  section.querySelector(".verdict").textContent = answer.prediction + " (" + percent(answer.confidence) + ")";
  const bars = Object.entries(answer.probabilities).map(([label, p]) => {
    const row = document.createElement("div");
    row.className = "bar" + (label === answer.prediction ? " top" : "");
    row.dataset.label = label;
    row.dataset.probability = p;
    const name = document.createElement("span");
    name.textContent = label;
    const track = document.createElement("div");
    track.className = "track";
    const fill = document.createElement("div");
    fill.className = "fill";
    fill.style.width = percent(p);
    track.append(fill);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = percent(p);
    row.append(name, track, value);
    return row;
  });
  section.querySelector(".bars").replaceChildren(...bars);
}

async function score(section, text) {
  clear(section);
  section.dataset.state = "loading";
  section.querySelector(".verdict").textContent = "…";
  const url = new URL(section.dataset.path, document.baseURI);
  url.searchParams.set("query", text);
  let response, body;
  try {
    response = await fetch(url, { headers: { Accept: "application/json" } });
    body = await response.json();
  } catch (err) {
    clear(section);
    showError(section, "Could not reach the service (" + err.message + ").");
    section.dataset.state = "error";
    return;
  }
  clear(section);
  if (response.ok) {
    showAnswer(section, body);
    section.dataset.state = "done";
  } else {
    // Every error of the API is JSON with a message written for the caller: show it as it is.
    showError(section, "Error " + response.status + ": " + (body.message || response.statusText));
    section.dataset.state = "error";
  }
}

function run(text) {
  // Keep the address shareable: /demo?query=... reproduces what is on screen.
  const here = new URL(window.location.href);
  here.searchParams.set("query", text);
  window.history.replaceState(null, "", here);
  return Promise.all(sections.map((section) => score(section, text)));
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  run(box.value);
});

box.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    form.requestSubmit();
  }
});

const initial = new URLSearchParams(window.location.search).get("query");
if (initial !== null) {
  box.value = initial;
  run(initial);
}
