// The SPARQL page's editor: CodeMirror 6 with the SPARQL mode of @codemirror/legacy-modes,
// over the page's own form, which works without it. Loaded only by /sparql
// (server/templates/sparql/query.html); bundled by editor/build.mjs into server/static/editor/.
//
// - The textarea stays the form's field: the editor replaces it on screen and copies its text
//   back before the form is sent, so the query runs and its URL is shared as without script.
// - Ctrl+Enter (Cmd+Enter) runs the query; Tab leaves the editor (no focus trap, WCAG 2.1.2).
// - The editor lives in a shadow root: CodeMirror's styles then go to a constructed style
//   sheet (adoptedStyleSheets), which a Content-Security-Policy without 'unsafe-inline' allows,
//   where a <style> element in the document would be refused.
// - Examples get an "Edit" button that puts the query in the editor without running it.
// - Result tables get sortable column headers (aria-sort), numbers compared as numbers.
import { defaultKeymap, history, historyKeymap } from "@codemirror/commands";
import {
  bracketMatching,
  HighlightStyle,
  StreamLanguage,
  syntaxHighlighting,
} from "@codemirror/language";
import { sparql } from "@codemirror/legacy-modes/mode/sparql";
import { EditorState } from "@codemirror/state";
import { drawSelection, EditorView, highlightActiveLine, keymap, lineNumbers } from "@codemirror/view";
import { tags } from "@lezer/highlight";

// Colours with at least 4.5:1 contrast on white (WCAG 1.4.3).
const highlight = HighlightStyle.define([
  { tag: tags.keyword, color: "#7a1f99", fontWeight: "bold" },
  { tag: [tags.variableName, tags.local(tags.variableName)], color: "#0b5394" },
  { tag: tags.string, color: "#a31515" },
  { tag: tags.atom, color: "#1f6b3a" },
  { tag: [tags.number, tags.bool], color: "#8a4b00" },
  { tag: tags.comment, color: "#5c6370", fontStyle: "italic" },
  { tag: tags.meta, color: "#5c4400" },
  { tag: tags.operator, color: "#333333" },
  { tag: tags.bracket, color: "#333333" },
]);

const theme = EditorView.theme({
  "&": {
    border: "1px solid #767676",
    borderRadius: "3px",
    backgroundColor: "#fff",
    color: "#111",
    fontSize: "14px",
  },
  "&.cm-focused": { outline: "3px solid #1a5fb4", outlineOffset: "1px" },
  ".cm-scroller": {
    fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
    lineHeight: "1.4",
    minHeight: "14em",
    maxHeight: "36em",
  },
  ".cm-gutters": { backgroundColor: "#f4f4f4", color: "#555", borderRight: "1px solid #ddd" },
  ".cm-activeLine": { backgroundColor: "#f3f7fc" },
});

function runForm(form) {
  if (form.requestSubmit) form.requestSubmit();
  else form.submit();
  return true;
}

function mountEditor(textarea) {
  const form = textarea.form;
  const host = document.createElement("div");
  host.className = "sparql-editor";
  textarea.insertAdjacentElement("afterend", host);
  const root = host.attachShadow({ mode: "open" });
  const view = new EditorView({
    root,
    parent: root,
    state: EditorState.create({
      doc: textarea.value,
      extensions: [
        lineNumbers(),
        history(),
        drawSelection(),
        highlightActiveLine(),
        bracketMatching(),
        StreamLanguage.define(sparql),
        syntaxHighlighting(highlight),
        theme,
        EditorView.lineWrapping,
        keymap.of([
          { key: "Mod-Enter", run: () => runForm(form) },
          ...defaultKeymap,
          ...historyKeymap,
        ]),
        EditorView.contentAttributes.of({
          "aria-label": "SPARQL query (Ctrl+Enter runs it)",
          "aria-multiline": "true",
          spellcheck: "false",
        }),
        EditorView.updateListener.of((update) => {
          if (update.docChanged) textarea.value = update.state.doc.toString();
        }),
      ],
    }),
  });
  textarea.hidden = true;
  textarea.setAttribute("aria-hidden", "true");
  textarea.tabIndex = -1;
  // The label named the textarea: it now focuses the editor.
  const label = document.querySelector(`label[for="${textarea.id}"]`);
  if (label) {
    label.removeAttribute("for");
    label.addEventListener("click", () => view.focus());
  }
  form.addEventListener("submit", () => {
    textarea.value = view.state.doc.toString();
  });
  return view;
}

function addExampleButtons(view) {
  for (const item of document.querySelectorAll("ul.examples > li")) {
    const pre = item.querySelector("pre");
    const link = item.querySelector("a");
    if (!pre || !link) continue;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "edit-example";
    button.textContent = "Edit";
    button.setAttribute("aria-label", `Edit “${link.textContent}” in the query editor`);
    button.addEventListener("click", () => {
      view.dispatch({
        changes: { from: 0, to: view.state.doc.length, insert: pre.textContent },
        selection: { anchor: 0 },
        scrollIntoView: true,
      });
      view.dom.scrollIntoView({ block: "nearest" });
      view.focus();
    });
    link.insertAdjacentElement("afterend", button);
    link.insertAdjacentText("afterend", " ");
  }
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function sortValue(cell) {
  return cell ? cell.dataset.sort ?? cell.textContent.trim() : "";
}

function compareValues(a, b) {
  if (a === "" || b === "") return a === b ? 0 : a === "" ? 1 : -1; // unbound last
  if (NUMBER.test(a) && NUMBER.test(b)) return Number(a) - Number(b);
  return a.localeCompare(b, undefined, { numeric: true, sensitivity: "base" });
}

function makeSortable(table) {
  const headers = Array.from(table.tHead ? table.tHead.rows[0].cells : []);
  const body = table.tBodies[0];
  if (!body || body.rows.length < 2) return;
  const original = Array.from(body.rows);
  headers.forEach((th, column) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "sort";
    button.append(...th.childNodes);
    th.append(button);
    button.addEventListener("click", () => {
      const ascending = th.getAttribute("aria-sort") !== "ascending";
      for (const other of headers) other.removeAttribute("aria-sort");
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      const rows = original.slice();
      rows.sort((r1, r2) => {
        const order = compareValues(sortValue(r1.cells[column]), sortValue(r2.cells[column]));
        return ascending ? order : -order;
      });
      body.append(...rows);
    });
  });
  const caption = table.querySelector("caption");
  if (caption) caption.append(" Column headers sort the rows shown.");
}

function start() {
  const textarea = document.getElementById("query");
  if (textarea && textarea.form) {
    const view = mountEditor(textarea);
    const hint = document.getElementById("editor-hint");
    if (hint) hint.hidden = false;
    addExampleButtons(view);
  }
  for (const table of document.querySelectorAll("table.results")) makeSortable(table);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
