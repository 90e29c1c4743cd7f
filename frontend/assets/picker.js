// Class pickers: a search box over a list of a model's classes, each with
// its example image (or a sketch drawn from its attributes when the
// server has no example) and its whole label — long names wrap, they are
// never cut where two classes differ. The search ranks the whole phrase
// above its words found apart. One class (the composer, morph and
// interpolate forms) or several (the data-set builder); keyboard: arrows,
// Home/End, Page keys, Space or Enter.

import * as api from "./api.js";
import { clear, h } from "./dom.js";
import { humanise, search } from "./labels.js";
import { sketch } from "./sketch.js";

let seq = 0;

// thumbs loads example images as their options scroll into view.
const thumbs = new IntersectionObserver(
  (entries) => {
    for (const e of entries) {
      if (!e.isIntersecting) continue;
      thumbs.unobserve(e.target);
      e.target.load?.();
    }
  },
  { rootMargin: "120px" },
);

// thumb is a class's small picture: its example image, or a sketch.
export function thumb(c, size = 32) {
  const box = h("span", { class: "thumb", "aria-hidden": "true" });
  box.dataset.size = String(size);
  if (!c.example) {
    box.append(sketch(c));
    return box;
  }
  const img = h("img", { alt: "", width: size, height: size, decoding: "async" });
  box.append(img);
  box.load = () =>
    api.image(c.example).then(
      ({ url }) => (img.src = url),
      () => box.replaceChildren(sketch(c)),
    );
  thumbs.observe(box);
  return box;
}

export function picker({ input, list, multiple = false, pickable = (c) => true, tag = () => "", onChange = () => {}, onEnter = null, empty = "No class matches." }) {
  const id = `pk${++seq}`;
  const st = { model: null, shown: [], selected: new Set(), active: -1 };
  list.setAttribute("role", "listbox");
  if (multiple) list.setAttribute("aria-multiselectable", "true");
  if (!list.hasAttribute("tabindex")) list.tabIndex = 0;
  input.setAttribute("aria-controls", list.id);

  function classes() {
    return st.model?.classes || [];
  }

  function paint() {
    clear(list);
    if (!st.shown.length) {
      list.append(h("p", { class: "empty" }, empty));
      list.removeAttribute("aria-activedescendant");
      return;
    }
    for (const { c, i } of st.shown) {
      const sel = st.selected.has(c.name);
      const ok = pickable(c);
      const note = tag(c);
      list.append(
        h(
          "div",
          {
            id: `${id}-${i}`,
            role: "option",
            class: `class-option${sel ? " selected" : ""}${ok ? "" : " held-out"}${i === st.active ? " active" : ""}`,
            "aria-selected": sel ? "true" : "false",
            "aria-disabled": ok ? false : "true",
            dataset: { name: c.name },
            onclick: () => {
              st.active = i;
              toggle(i, true);
            },
          },
          thumb(c),
          h("span", { class: "class-name" }, c.label || humanise(c.name)),
          note ? h("span", { class: "tag" }, note) : null,
        ),
      );
    }
    if (st.active >= 0 && document.getElementById(`${id}-${st.active}`)) list.setAttribute("aria-activedescendant", `${id}-${st.active}`);
    else list.removeAttribute("aria-activedescendant");
  }

  function filter() {
    st.shown = search(classes(), input.value);
    paint();
  }

  function toggle(i, user) {
    const c = classes()[i];
    if (!c || !pickable(c)) return;
    if (multiple) {
      if (st.selected.has(c.name)) st.selected.delete(c.name);
      else st.selected.add(c.name);
    } else {
      st.selected = new Set([c.name]);
    }
    paint();
    document.getElementById(`${id}-${i}`)?.scrollIntoView({ block: "nearest" });
    if (user) onChange([...st.selected]);
  }

  function move(d) {
    const items = st.shown.filter(({ c }) => pickable(c) || multiple).map(({ i }) => i);
    if (!items.length) return;
    let at = items.indexOf(st.active);
    at = at < 0 ? (d < 0 ? items.length - 1 : 0) : Math.min(items.length - 1, Math.max(0, at + d));
    st.active = items[at];
    if (!multiple) toggle(st.active, true);
    else {
      paint();
      document.getElementById(`${id}-${st.active}`)?.scrollIntoView({ block: "nearest" });
    }
  }

  input.addEventListener("input", filter);
  input.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown") {
      e.preventDefault();
      list.focus();
      if (st.active < 0 || !st.shown.some(({ i }) => i === st.active)) move(1);
    } else if (e.key === "Enter" && !e.ctrlKey && !e.metaKey) {
      // Enter in the search box picks the best match (and never submits
      // the form: its keypress is swallowed too).
      e.preventDefault();
      st.swallow = true;
      const best = st.shown.find(({ c }) => pickable(c));
      if (best) {
        st.active = best.i;
        if (!multiple || !st.selected.has(best.c.name)) toggle(best.i, true);
      }
    }
  });
  input.addEventListener("keypress", (e) => {
    if (e.key === "Enter" && st.swallow) e.preventDefault();
  });
  input.addEventListener("keyup", () => (st.swallow = false));
  list.addEventListener("keydown", (e) => {
    const map = { ArrowDown: 1, ArrowUp: -1, PageDown: 5, PageUp: -5, Home: -1e6, End: 1e6 };
    if (e.key in map) {
      e.preventDefault();
      move(map[e.key]);
    } else if (e.key === " " || (e.key === "Enter" && multiple && !e.ctrlKey && !e.metaKey)) {
      e.preventDefault();
      if (st.active >= 0) toggle(st.active, true);
    } else if (e.key === "Enter" && onEnter && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      onEnter();
    }
  });

  return {
    // setModel shows model m's classes with names selected (the first
    // pickable class when none is given, for a single picker).
    setModel(m, names) {
      st.model = m;
      input.value = "";
      const all = classes();
      let want = (names || []).filter((n) => all.some((c) => c.name === n && pickable(c)));
      if (!multiple && !want.length) {
        const first = all.find(pickable);
        want = first ? [first.name] : [];
      }
      st.selected = new Set(multiple ? want : want.slice(0, 1));
      st.active = all.findIndex((c) => st.selected.has(c.name));
      filter();
      document.getElementById(`${id}-${st.active}`)?.scrollIntoView({ block: "nearest" });
    },
    value() {
      return [...st.selected];
    },
    selected() {
      return classes().filter((c) => st.selected.has(c.name));
    },
    select(names) {
      st.selected = new Set(multiple ? names : names.slice(0, 1));
      st.active = classes().findIndex((c) => st.selected.has(c.name));
      paint();
      onChange([...st.selected]);
    },
    // selectShown selects every pickable class the search shows.
    selectShown() {
      for (const { c } of st.shown) if (pickable(c)) st.selected.add(c.name);
      paint();
      onChange([...st.selected]);
    },
    clearSelection() {
      st.selected.clear();
      paint();
      onChange([]);
    },
    shown() {
      return st.shown.map(({ c }) => c);
    },
    focus() {
      list.focus();
    },
  };
}
