// The room as this page knows it: rebuilt from `room:state` on every
// (re)connect, then kept current by the server's events. Panels subscribe to
// topics and re-render only what changed.

import { ServerClock } from "./clock.js";
import { remember } from "./products.js";

const byId = (items, key = "id") => new Map((items || []).map((item) => [String(item[key]), item]));

export function emptyState() {
  return {
    connection: "connecting", // connecting | connected | reconnecting | refused
    error: null,
    room: null,
    me: null,
    participants: new Map(),
    counts: {},
    stage: [],
    polls: new Map(),
    questions: new Map(),
    chat: [],
    slots: new Map(),
    drops: new Map(),
    cart: null,
    orders: new Map(),
    shop: {},
    speaking: [],
    products: new Map(), // id -> product, as `product:updated` last said (audio state, preview)
    tone: null, // {product_id, ends_at} while a tone plays into the room
    oneClick: false, // a signed-in buyer with a saved card
    signedIn: false, // the page's identity is an account
  };
}

const CHAT_KEEP = 200;

export class Store {
  constructor() {
    this.state = emptyState();
    this.clock = new ServerClock();
    this.listeners = new Map(); // topic -> Set<fn>
  }

  /** Call `fn(state)` now and whenever one of `topics` changes. */
  on(topics, fn) {
    for (const topic of [].concat(topics)) {
      if (!this.listeners.has(topic)) this.listeners.set(topic, new Set());
      this.listeners.get(topic).add(fn);
    }
    fn(this.state, null);
  }

  emit(topics, detail = null) {
    const called = new Set();
    for (const topic of [].concat(topics)) {
      for (const fn of this.listeners.get(topic) || []) {
        if (called.has(fn)) continue;
        called.add(fn);
        fn(this.state, detail);
      }
    }
  }

  set(topic, changes) {
    Object.assign(this.state, changes);
    this.emit(topic);
  }

  /** A whole snapshot: everything is replaced, nothing from before survives. */
  snapshot(s) {
    this.clock.sync(s.server_time);
    const keep = {
      connection: this.state.connection,
      cart: this.state.cart,
      orders: this.state.orders,
      products: this.state.products,
      oneClick: this.state.oneClick,
      signedIn: this.state.signedIn,
    };
    this.state = {
      ...emptyState(),
      ...keep,
      room: s.room,
      me: s.me,
      participants: byId(s.participants, "identity"),
      counts: s.counts || {},
      stage: s.stage || [],
      polls: byId(s.polls),
      questions: byId(s.questions),
      chat: (s.chat || []).slice(-CHAT_KEEP),
      slots: byId(s.slots, "slot"),
      drops: byId(s.drops),
      shop: s.shop || {},
      speaking: s.speaking || [],
      tone: s.tone || null,
    };
    if (s.cart !== undefined) this.state.cart = s.cart;
    // The caller's saved card (signed-in buyers): one-click buying is offered.
    if (s.saved_card !== undefined) this.state.oneClick = Boolean(s.saved_card);
    // Orders settled while the page was away (a reconnect, a reload) arrive here.
    for (const order of s.orders || []) upsert(this.state.orders, order.id, order);
    this.emit(ALL_TOPICS);
  }

  apply(event, data) {
    const handler = HANDLERS[event];
    if (handler) handler(this, data || {});
  }
}

function upsert(map, key, value) {
  map.set(String(key), value);
}

function person(store, p) {
  if (!p) return;
  upsert(store.state.participants, p.identity, p);
  if (store.state.me && p.identity === store.state.me.identity) {
    store.state.me = { ...store.state.me, ...p, role: store.state.me.role };
  }
}

const HANDLERS = {
  "room:updated": (store, d) => store.set("room", { room: d.room }),
  "presence:updated": (store, d) => {
    store.clock.sync(d.server_time);
    const people = store.state.participants;
    if (d.participants) {
      store.state.participants = byId(d.participants, "identity");
    }
    // Joins are coalesced and may arrive after a newer hand or stage event
    // of the same person: what we already know of them wins.
    for (const p of d.joined || []) upsert(people, p.identity, { ...p, ...people.get(p.identity) });
    for (const identity of d.left || []) {
      const p = people.get(identity);
      // People on stage or with a raised hand stay listed: the room keeps them.
      if (p && !p.on_stage && !p.hand_raised) people.delete(identity);
    }
    if (d.counts) store.state.counts = d.counts;
    store.emit(["presence", "people"]);
  },
  "stage:updated": (store, d) => {
    person(store, d.participant);
    if (d.stage) store.state.stage = d.stage;
    store.emit(["stage", "people", "me"]);
  },
  "hand:updated": (store, d) => {
    person(store, d.participant);
    store.emit(["people", "me"]);
  },
  "poll:updated": (store, d) => {
    upsert(store.state.polls, d.poll.id, d.poll);
    store.emit("polls", d.poll);
  },
  "question:updated": (store, d) => {
    upsert(store.state.questions, d.question.id, d.question);
    store.emit("questions", d.question);
  },
  "chat:message": (store, d) => {
    const chat = store.state.chat;
    if (!chat.some((m) => m.id === d.message.id)) chat.push(d.message);
    if (chat.length > CHAT_KEEP) chat.splice(0, chat.length - CHAT_KEEP);
    store.emit("chat", d.message);
  },
  reaction: (store, d) => store.emit("reaction", d),
  "speaking:updated": (store, d) => store.set("speaking", { speaking: d.speaking || [] }),
  "token:updated": (store, d) => store.emit("token", d),
  "slot:updated": (store, d) => {
    const slot = d.slot;
    if (!slot) return;
    if (slot.product || slot.product_id) upsert(store.state.slots, slot.slot, slot);
    else store.state.slots.delete(String(slot.slot));
    store.emit("slots", slot);
  },
  "drop:updated": (store, d) => {
    store.clock.sync(d.drop?.server_time ?? d.server_time);
    upsert(store.state.drops, d.drop.id, d.drop);
    store.emit("drops", d.drop);
  },
  "cart:updated": (store, d) => store.set("cart", { cart: d.cart }),
  "order:updated": (store, d) => {
    upsert(store.state.orders, d.order.id, d.order);
    store.emit("orders", d.order);
  },
  // A product changed (its sound is processing, ready or failed).
  "product:updated": (store, d) => {
    if (!d.product?.id) return;
    remember(d.product);
    upsert(store.state.products, d.product.id, d.product);
    store.emit("products", d.product);
  },
  "tone:playing": (store, d) => store.set("tone", { tone: { product_id: d.product_id, ends_at: d.ends_at } }),
  "tone:stopped": (store) => store.set("tone", { tone: null }),
  // Staff only: every order of the room as its status changes.
  "order:feed": (store, d) => store.emit("orderFeed", d.order),
};

export const ALL_TOPICS = [
  "connection",
  "room",
  "me",
  "presence",
  "people",
  "stage",
  "polls",
  "questions",
  "chat",
  "slots",
  "drops",
  "cart",
  "orders",
  "products",
  "tone",
  "oneClick",
];

/** Questions as a moderator wants them: open first, most votes, oldest. */
export function rankedQuestions(state) {
  return [...state.questions.values()].sort(
    (a, b) =>
      Number(a.answered) - Number(b.answered) || b.votes - a.votes || a.created_at - b.created_at,
  );
}

/** Newest polls first. */
export function pollsNewestFirst(state) {
  return [...state.polls.values()].sort((a, b) => (b.created_at || 0) - (a.created_at || 0));
}
