// Products by id, fetched once from the public catalog route and kept.

const cache = new Map();

export function product(id) {
  if (!cache.has(id)) {
    const request = fetch(`/api/v1/products/${encodeURIComponent(id)}`)
      .then((resp) => (resp.ok ? resp.json() : null))
      .catch(() => null);
    cache.set(id, request);
  }
  return cache.get(id);
}

/** Remember a product a server event carried, so no fetch is needed. */
export function remember(p) {
  if (p && p.id) cache.set(p.id, Promise.resolve(p));
}
