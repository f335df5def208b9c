// Room templates: presets of modules and guests a creator starts from and
// may change before creating the room (nothing here is enforced).

export const MODULES = [
  ["shop", "Shop"],
  ["chat", "Chat"],
  ["polls", "Polls"],
  ["qa", "Q&A"],
];

export const TEMPLATES = [
  { id: "live-shop", name: "Live shop", modules: ["shop", "chat", "polls"], guests: true, hint: "Drops and buy slots, with chat and quick polls." },
  { id: "talk-qa", name: "Talk + Q&A", modules: ["qa", "polls", "chat"], guests: true, hint: "A talk with questions voted up by the audience." },
  { id: "listening-party", name: "Listening party", modules: ["chat", "shop"], guests: true, hint: "Play tones together, chat, sell the tones you play." },
  { id: "private", name: "Members only", modules: ["shop", "chat", "polls", "qa"], guests: false, hint: "Every module; invited or signed-in people only." },
];

export const templateById = (id) => TEMPLATES.find((t) => t.id === id) || TEMPLATES[0];
