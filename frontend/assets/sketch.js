// A schematic bird drawn from a class's attributes (crown, breast, wing,
// upperparts and bill colours; bill, tail and pattern shapes; eye ring;
// size). The class picker shows it when the API offers no example photo
// for a class.

import { s } from "./dom.js";

const COLOURS = {
  red: "#d33f3f",
  orange: "#f08a24",
  yellow: "#f2d230",
  green: "#3c9a4a",
  blue: "#3a6fd8",
  purple: "#8a4fbf",
  brown: "#8b5a2b",
  black: "#262626",
  white: "#f7f7f7",
  grey: "#9a9a9a",
  gray: "#9a9a9a",
  buff: "#e6c79c",
  olive: "#808000",
  iridescent: "#3aa6a0",
  rufous: "#b5541f",
};

function colour(v, fallback) {
  return COLOURS[String(v || "").toLowerCase()] || fallback;
}

const OUTLINE = { stroke: "#2b2b2b", "stroke-width": "1", "stroke-linejoin": "round" };

function tail(shape, fill) {
  const a = { fill, ...OUTLINE };
  switch (shape) {
    case "notched":
      return s("path", { d: "M28 56 L4 46 L14 60 L4 74 L28 64 Z", ...a });
    case "rounded":
      return s("path", { d: "M28 54 C10 50 2 58 4 62 C2 68 10 74 28 66 Z", ...a });
    case "fan-shaped":
      return s("path", { d: "M30 58 L2 40 L0 60 L2 80 L30 64 Z", ...a });
    default: // pointed
      return s("path", { d: "M28 56 L0 60 L28 66 Z", ...a });
  }
}

function bill(shape, fill) {
  const a = { fill, ...OUTLINE };
  switch (shape) {
    case "hooked":
      return s("path", { d: "M98 36 C108 34 114 38 112 46 C110 42 106 42 98 43 Z", ...a });
    case "needle":
      return s("path", { d: "M98 38 L120 40 L98 42 Z", ...a });
    case "cone":
      return s("path", { d: "M98 34 L110 40 L98 45 Z", ...a });
    case "spatulate":
      return s("path", { d: "M98 37 L110 38 C118 35 120 44 112 43 L98 42 Z", ...a });
    default: // all-purpose
      return s("path", { d: "M98 36 L113 40 L98 43 Z", ...a });
  }
}

function pattern(kind, cx, cy, rx, ry, ink) {
  const marks = [];
  if (kind === "streaked" || kind === "striped") {
    for (let i = -2; i <= 2; i++) {
      const x = cx + i * (rx / 3);
      marks.push(s("line", { x1: x - 2, y1: cy - ry / 2, x2: x + 2, y2: cy + ry / 2, stroke: ink, "stroke-width": "1.4", "stroke-linecap": "round" }));
    }
  } else if (kind === "spotted") {
    for (const [dx, dy] of [[-0.5, -0.3], [0, 0.2], [0.45, -0.2], [-0.2, 0.55], [0.3, 0.5]]) {
      marks.push(s("circle", { cx: cx + dx * rx, cy: cy + dy * ry, r: "1.6", fill: ink }));
    }
  } else if (kind === "wingbars") {
    for (const dy of [-0.25, 0.25]) {
      marks.push(s("line", { x1: cx - rx * 0.6, y1: cy + dy * ry, x2: cx + rx * 0.6, y2: cy + dy * ry, stroke: "#fafafa", "stroke-width": "2", "stroke-linecap": "round" }));
    }
  }
  return marks;
}

// sketch returns an SVG element of the class cls ({label, attributes}).
export function sketch(cls) {
  const at = cls.attributes || {};
  const upper = colour(at.has_upperparts_color, "#9a9a9a");
  const breast = colour(at.has_breast_color, upper);
  const wing = colour(at.has_wing_color, upper);
  const crown = colour(at.has_crown_color, upper);
  const billC = colour(at.has_bill_color, "#555");
  const scale = { small: 0.82, medium: 0.91, large: 1 }[at.has_size] || 0.91;
  const dark = breast === COLOURS.black ? "#ddd" : "#2b2b2b";
  const wingInk = wing === COLOURS.black ? "#ddd" : "#2b2b2b";
  const described = Object.entries(at)
    .map(([k, v]) => `${k.replace(/^has_/, "").replace(/_/g, " ")}: ${v}`)
    .join(", ");
  return s(
    "svg",
    { viewBox: "0 0 124 100", class: "sketch", role: "img", "aria-label": `Sketch of ${cls.label || cls.name} from its attributes (${described})` },
    s("title", { text: `Sketch of ${cls.label || cls.name}` }),
    s(
      "g",
      { transform: `translate(${62 * (1 - scale)} ${96 * (1 - scale)}) scale(${scale})` },
      s("line", { x1: 52, y1: 78, x2: 48, y2: 94, stroke: "#555", "stroke-width": "2" }),
      s("line", { x1: 62, y1: 78, x2: 64, y2: 94, stroke: "#555", "stroke-width": "2" }),
      tail(at.has_tail_shape, wing),
      s("ellipse", { cx: 56, cy: 60, rx: 32, ry: 21, fill: upper, ...OUTLINE }),
      s("ellipse", { cx: 68, cy: 67, rx: 19, ry: 13, fill: breast, ...OUTLINE }),
      ...pattern(at.has_breast_pattern, 68, 67, 16, 10, dark),
      s("ellipse", { cx: 48, cy: 56, rx: 21, ry: 11, fill: wing, transform: "rotate(-12 48 56)", ...OUTLINE }),
      ...pattern(at.has_wing_pattern, 46, 56, 16, 8, wingInk),
      s("circle", { cx: 86, cy: 40, r: 15, fill: upper, ...OUTLINE }),
      s("path", { d: "M71.5 38 A15 15 0 0 1 100.8 37 Z", fill: crown, ...OUTLINE }),
      at.has_eye_ring === "yes" ? s("circle", { cx: 91, cy: 41, r: 4.2, fill: "none", stroke: "#fafafa", "stroke-width": "2" }) : null,
      s("circle", { cx: 91, cy: 41, r: 2.3, fill: "#111" }),
      bill(at.has_bill_shape, billC),
    ),
  );
}
