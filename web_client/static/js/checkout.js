// Paying in the page with Stripe.js, loaded from the configured URL (Stripe's
// own in production, any Stripe-compatible one elsewhere). One integration
// that works with every such server: the card element is tokenised in the
// browser, the server confirms the PaymentIntent with that card, and 3-D
// Secure, when the bank asks for it, is finished with `confirmCardPayment`.

let loading = null;

export function loadStripeJs(url) {
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      if (window.Stripe) return resolve(window.Stripe);
      const script = document.createElement("script");
      script.src = url;
      script.async = true;
      script.onload = () => (window.Stripe ? resolve(window.Stripe) : reject(new Error("Stripe.js did not load")));
      script.onerror = () => {
        loading = null;
        reject(new Error("The payment form could not be loaded. Check your connection."));
      };
      document.head.append(script);
    });
  }
  return loading;
}

export class CardForm {
  constructor() {
    this.stripe = null;
    this.card = null;
    this.key = null;
  }

  get ready() {
    return Boolean(this.card);
  }

  /** Load Stripe.js (once): enough to finish 3-D Secure of a saved card. */
  async load({ url, publishableKey }) {
    if (this.stripe) return;
    const Stripe = await loadStripeJs(url);
    this.stripe = Stripe(publishableKey);
    this.key = publishableKey;
  }

  /** Load Stripe.js and mount the card element into `container` (once). */
  async mount(container, { url, publishableKey }) {
    if (this.card) return;
    await this.load({ url, publishableKey });
    this.card = this.stripe.elements().create("card", { hidePostalCode: false });
    this.card.mount(container);
  }

  /**
   * A PaymentMethod (`pm_...`) the server can attach to the buyer's Customer
   * to save the card, when this Stripe.js can make one; null otherwise
   * (localstripe's Stripe.js has no working `createPaymentMethod`).
   */
  async reusableMethod() {
    if (typeof this.stripe.createPaymentMethod !== "function") return null;
    const result = await this.stripe.createPaymentMethod({ type: "card", card: this.card });
    if (result?.error) throw new Error(result.error.message || "Check the card details.");
    return result?.paymentMethod?.id || null;
  }

  /** The card as a payment method id the server can charge. */
  async paymentMethod() {
    const result = await this.stripe.createToken(this.card);
    if (result.error || !result.token) {
      throw new Error(result.error?.message || "Check the card details.");
    }
    return result.token.card?.id || result.token.id;
  }

  /** Finish 3-D Secure; resolves to the intent's status, throws the bank's message. */
  async authenticate(clientSecret) {
    const result = await this.stripe.confirmCardPayment(clientSecret);
    if (result.error) throw new Error(result.error.message || "The card could not be authenticated.");
    return result.paymentIntent?.status;
  }
}

export const DECLINED = "Your card was declined. Try another card.";

/** A person's message for an order that did not go through. */
export function failureText(order) {
  switch (order?.reason) {
    case "payment_failed":
      return DECLINED;
    case "hold_expired":
      return "Your hold ran out before the payment finished; the items went back on sale.";
    case "payment_canceled":
      return "The payment was cancelled.";
    case "paid_after_hold_lost":
      return "The item sold out before your payment arrived; you have been refunded.";
    case "amount_mismatch":
      return "The payment did not match the order; it has been refunded.";
    case "canceled_by_buyer":
      return "You cancelled this order; its items went back on sale.";
    default:
      return "The payment did not go through.";
  }
}
