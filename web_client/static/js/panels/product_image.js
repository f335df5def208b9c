// A product's image on its slot or drop card (the studio's upload, served
// re-encoded by the server at `image_url`): decorative next to the title,
// so its alt text is empty; none when the product has no image.

import { h } from "../dom.js";

export function syncImage(card, product) {
  let img = card.querySelector(":scope > img.product-image");
  if (!product?.image_url) {
    img?.remove();
    return;
  }
  if (!img) {
    img = h("img", { class: "product-image", alt: "", width: 96, height: 96, loading: "lazy", decoding: "async" });
    card.prepend(img);
  }
  if (img.getAttribute("src") !== product.image_url) img.src = product.image_url;
}
