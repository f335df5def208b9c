// Prices typed by people in major units ("12.50") turned into the integer
// minor units the server speaks (1250), exactly: digits are shifted as
// text, never multiplied as floats (0.29 * 100 is 28.999999999999996).
// Zero-decimal currencies (jpy) take whole numbers only; three-decimal
// ones (bhd) up to three decimals.

/** The number of decimals of a currency's minor unit (eur 2, jpy 0, bhd 3). */
export function currencyExponent(currency) {
  const code = String(currency || "").toUpperCase();
  return new Intl.NumberFormat("en", { style: "currency", currency: code }).resolvedOptions().maximumFractionDigits;
}

/**
 * "12.50" eur -> 1250, "12,5" eur -> 1250, "500" jpy -> 500; throws an
 * Error saying what is wrong ("jpy has no decimals", "at most 2 decimals").
 */
export function toMinor(text, currency) {
  const exponent = currencyExponent(currency);
  const value = String(text ?? "").trim().replace(/\s/g, "").replace(",", ".");
  const match = /^(\d{1,9})(?:\.(\d*))?$/.exec(value);
  if (!match) throw new Error("Enter a price such as 12.50");
  const [, whole, decimals = ""] = match;
  if (decimals.length > exponent) {
    const code = String(currency).toUpperCase();
    throw new Error(exponent === 0 ? `${code} has no decimals: enter a whole amount` : `${code} has at most ${exponent} decimals`);
  }
  const minor = Number(whole + decimals.padEnd(exponent, "0"));
  if (!(minor > 0)) throw new Error("The price must be more than zero");
  return minor;
}

/** 1250 eur -> "12.50", 500 jpy -> "500": the text an edit form starts from. */
export function toMajorText(minor, currency) {
  const exponent = currencyExponent(currency);
  const digits = String(Math.abs(Math.trunc(minor))).padStart(exponent + 1, "0");
  return exponent ? `${digits.slice(0, -exponent)}.${digits.slice(-exponent)}` : digits;
}
