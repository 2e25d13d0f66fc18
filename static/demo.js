// The demo page: score the phrase with both models, draw each label's probability as a bar, and shade
// each word of the phrase by its share of the answer (the API's ?explain=true).
// Plain browser JavaScript, no build step; the API is reached by URLs relative to this page.
"use strict";

const form = document.getElementById("form");
const box = document.getElementById("query");
const sections = Array.from(document.querySelectorAll(".model"));
// scikit-learn's default token pattern (?u)\b\w\w+\b: runs of 2+ word characters, as Python's \w reads them.
const WORD = /[\p{L}\p{N}_]{2,}/gu;
const STRONGEST = 5;

function clear(section) {
  section.querySelector(".verdict").textContent = "";
  section.querySelector(".bars").replaceChildren();
  section.querySelector(".why").replaceChildren();
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

function element(tag, className, text) {
  const made = document.createElement(tag);
  made.className = className;
  if (text !== undefined) made.textContent = text;
  return made;
}

// A term shaded by its contribution: one colour toward the prediction, the other against it, as strong as
// its share of the largest |contribution| in the answer.
function shaded(text, term, largest) {
  const mark = element("span", "term " + (term.contribution >= 0 ? "toward" : "against"), text);
  mark.dataset.term = term.term;
  mark.dataset.contribution = term.contribution;
  mark.style.setProperty("--strength", (Math.abs(term.contribution) / largest).toFixed(3));
  mark.title = term.term + ": " + signed(term.contribution);
  return mark;
}

function signed(x) {
  return (x >= 0 ? "+" : "−") + Math.abs(x).toFixed(2);
}

function showExplanation(section, text, answer) {
  const why = answer.explanation;
  const largest = Math.max(0, ...why.terms.map((t) => Math.abs(t.contribution))) || 1;
  const unigrams = new Map(why.terms.filter((t) => !t.term.includes(" ")).map((t) => [t.term, t]));
  // The phrase as typed: each word the analyzer kept as a unigram term is shaded, the rest stays as it is.
  const phrase = element("p", "phrase");
  let end = 0;
  for (const match of text.matchAll(WORD)) {
    const term = unigrams.get(match[0].toLowerCase());
    if (!term) continue;
    phrase.append(text.slice(end, match.index), shaded(match[0], term, largest));
    end = match.index + match[0].length;
  }
  phrase.append(text.slice(end));
  const legend = element("p", "legend");
  legend.append(element("span", "swatch toward"), " toward " + answer.prediction + " (the verdict) ",
    element("span", "swatch against"), " toward " + why.against + " (the runner-up); log-odds of " +
    answer.prediction + " over " + why.against + " " + signed(why.log_odds) + (why.terms.length ? "" : ". No word of the phrase is in the model's vocabulary."));
  const strongest = element("ol", "strongest");
  strongest.append(...why.terms.slice(0, STRONGEST).map((term) => {
    const item = element("li", "");
    item.append(shaded(term.term, term, largest), " " + signed(term.contribution));
    return item;
  }));
  section.querySelector(".why").replaceChildren(phrase, legend, strongest);
}

async function score(section, text) {
  clear(section);
  section.dataset.state = "loading";
  section.querySelector(".verdict").textContent = "…";
  const url = new URL(section.dataset.path, document.baseURI);
  url.searchParams.set("query", text);
  url.searchParams.set("explain", "true");
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
    if (body.explanation) showExplanation(section, text, body);
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
