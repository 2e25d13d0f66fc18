// The demo page's forms of named inputs: a film's rating from /ratings, and each model added with
// `release.py add`. The fields are built from the server's own contract (/openapi.json: each input's
// type, whether it is required, its allowed values), so a form always asks what the served model takes.
// Plain browser JavaScript, no build step.
"use strict";

function field(prefix, parameter) {
  const label = document.createElement("label");
  label.htmlFor = prefix + "-" + parameter.name;
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
  input.id = prefix + "-" + parameter.name;
  input.name = parameter.name;
  input.required = parameter.required;
  input.title = parameter.description || "";
  const row = document.createElement("div");
  row.className = "film-field";
  row.append(label, input);
  return row;
}

// What an answer says: a label and its probability, or a number and its typical error; and the inputs
// whose value the model never saw.
function answerText(body, suffix) {
  let text;
  if (typeof body.prediction === "string") {
    text = body.prediction + " (" + Math.round(body.confidence * 100) + "%)";
  } else {
    text = body.prediction.toFixed(2) + suffix;
    if (body.typical_error !== null) text += " (typically within " + body.typical_error.toFixed(2) + ")";
  }
  if (body.unseen.length) text += "; never seen: " + body.unseen.join(", ");
  return text;
}

function namedInputs(card) {
  const form = document.getElementById(card.dataset.form);
  const fields = form.querySelector(".named-fields");

  function show(kind, text) {
    const verdict = card.querySelector(".verdict");
    const error = card.querySelector(".error");
    verdict.textContent = kind === "answer" ? text : "";
    error.textContent = kind === "error" ? text : "";
    error.hidden = kind !== "error";
    card.dataset.state = kind === "answer" ? "done" : kind;
  }

  async function predict(event) {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const input of fields.querySelectorAll("input, select")) {
      if (input.value.trim() !== "") query.set(input.name, input.value.trim());
    }
    card.dataset.state = "loading";
    try {
      const response = await fetch(card.dataset.path + "?" + query.toString(), {headers: {Accept: "application/json"}});
      const body = await response.json();
      if (!response.ok) {
        show("error", "Error " + response.status + ": " + body.message);
        return;
      }
      show("answer", answerText(body, card.dataset.suffix || ""));
    } catch (failure) {
      show("error", "The server could not be reached: " + failure.message);
    }
  }

  async function build() {
    try {
      const document_ = await (await fetch("openapi.json")).json();
      const operation = (document_.paths["/" + card.dataset.path] || {}).get;
      if (!operation || !operation.parameters.length) {
        show("error", card.dataset.missing);
        return;
      }
      // The inputs; `explain` (a flag asking for the answer's contributions) is not one.
      const inputs = operation.parameters.filter((parameter) => parameter.name !== "explain" ||
                                                                 parameter.schema.type !== "boolean");
      fields.replaceChildren(...inputs.map((parameter) => field(card.dataset.prefix, parameter)));
      form.hidden = false;
      card.dataset.state = "ready";
    } catch (failure) {
      show("error", "The server's contract could not be read: " + failure.message);
    }
  }

  form.addEventListener("submit", predict);
  build();
}

document.querySelectorAll(".named-card").forEach(namedInputs);
