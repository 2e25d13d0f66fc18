// The demo page's film form: predict a film's rating with /ratings. The fields are built from the
// server's own contract (/openapi.json: each input's type, whether it is required, its allowed values),
// so the form always asks what the served model takes. Plain browser JavaScript, no build step.
"use strict";

const filmForm = document.getElementById("film-form");
const fields = document.getElementById("film-fields");
const film = document.getElementById("film");

function field(parameter) {
  const label = document.createElement("label");
  label.htmlFor = "film-" + parameter.name;
  label.textContent = parameter.name.replace(/_/g, " ") + (parameter.required ? "" : " (optional)");
  let input;
  const schema = parameter.schema;
  if (schema.enum) {
    input = document.createElement("select");
    const values = parameter.required ? schema.enum : [""].concat(schema.enum);
    for (const value of values) {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = value || "not given";
      input.append(option);
    }
  } else {
    input = document.createElement("input");
    input.type = schema.type === "string" ? "text" : "number";
    if (schema.type === "integer") input.step = "1";
    if (schema.type === "number") input.step = "any";
  }
  input.id = "film-" + parameter.name;
  input.name = parameter.name;
  input.required = parameter.required;
  input.title = parameter.description || "";
  const row = document.createElement("div");
  row.className = "film-field";
  row.append(label, input);
  return row;
}

function show(kind, text) {
  const verdict = film.querySelector(".verdict");
  const error = film.querySelector(".error");
  verdict.textContent = kind === "answer" ? text : "";
  error.textContent = kind === "error" ? text : "";
  error.hidden = kind !== "error";
  film.dataset.state = kind === "answer" ? "done" : kind;
}

async function predict(event) {
  event.preventDefault();
  const query = new URLSearchParams();
  for (const input of fields.querySelectorAll("input, select")) {
    if (input.value.trim() !== "") query.set(input.name, input.value.trim());
  }
  film.dataset.state = "loading";
  try {
    const response = await fetch(film.dataset.path + "?" + query.toString(), {headers: {Accept: "application/json"}});
    const body = await response.json();
    if (!response.ok) {
      show("error", "Error " + response.status + ": " + body.message);
      return;
    }
    let text = body.prediction.toFixed(2) + " out of 10";
    if (body.typical_error !== null) text += " (typically within " + body.typical_error.toFixed(2) + ")";
    if (body.unseen.length) text += "; never seen: " + body.unseen.join(", ");
    show("answer", text);
  } catch (failure) {
    show("error", "The server could not be reached: " + failure.message);
  }
}

async function build() {
  try {
    const document_ = await (await fetch("openapi.json")).json();
    const operation = (document_.paths["/" + film.dataset.path] || {}).get;
    if (!operation || !operation.parameters.length) {
      show("error", "The ratings model is not built on this server: python build_model.py --only ratings builds it.");
      return;
    }
    fields.replaceChildren(...operation.parameters.map(field));
    filmForm.hidden = false;
    film.dataset.state = "ready";
  } catch (failure) {
    show("error", "The server's contract could not be read: " + failure.message);
  }
}

filmForm.addEventListener("submit", predict);
build();
