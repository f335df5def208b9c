// The creator studio's calls (PROTOCOL.md "Buyers and creators" and
// "Creator studio"), each with the signed-in creator's account token.
// Answers are read leniently (`{"product"}` or the product itself) so the
// page keeps working as the server grows fields.

import { api, accountToken } from "../account.js";

const enc = encodeURIComponent;
const call = (method, path, body) => api(method, path, { token: accountToken(), body });
const room = (id) => `/api/v1/rooms/${enc(id)}`;

export const myRooms = () => call("GET", "/api/v1/rooms?owner=me").then((b) => b.rooms || []);
export const myProducts = () => call("GET", "/api/v1/products?owner=me").then((b) => b.products || []);

export const createRoom = (fields) => call("POST", "/api/v1/rooms", fields).then((b) => b.room || b);
export const updateRoom = (id, fields) => call("PATCH", room(id), fields).then((b) => b.room || b);

export const createProduct = (fields) => call("POST", "/api/v1/products", fields).then((b) => b.product || b);
export const updateProduct = (id, fields) => call("PATCH", `/api/v1/products/${enc(id)}`, fields).then((b) => b.product || b);

export const episodes = (id) => call("GET", `${room(id)}/episodes`).then((b) => b.episodes || []);
export const addEpisode = (id, fields) => call("POST", `${room(id)}/episodes`, fields).then((b) => b.episode || b);
export const deleteEpisode = (id, episodeId) => call("DELETE", `${room(id)}/episodes/${enc(episodeId)}`);
export const calendarUrl = (id) => `${room(id)}/calendar.ics`;

export const invites = (id) => call("GET", `${room(id)}/tokens`).then((b) => b.tokens || []);
export const mintInvite = (id, fields) => call("POST", `${room(id)}/tokens`, fields);
export const revokeInvite = (id, tokenId) => call("DELETE", `${room(id)}/tokens/${enc(tokenId)}`);

/** A room token for the owner (host in their own room), to open the console. */
export const joinOwnRoom = (id) => call("POST", `${room(id)}/join`).then((b) => b.token);
