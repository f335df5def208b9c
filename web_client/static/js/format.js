// Formatting for people: money in minor units, durations, times.

const formatters = new Map();

function moneyFormatter(currency, locale) {
  const key = `${locale || ""}|${currency}`;
  if (!formatters.has(key)) {
    formatters.set(key, new Intl.NumberFormat(locale, { style: "currency", currency }));
  }
  return formatters.get(key);
}

/** The number of decimals a currency's minor unit has (USD 2, JPY 0, BHD 3). */
export function currencyExponent(currency) {
  return moneyFormatter(currency.toUpperCase(), "en").resolvedOptions().maximumFractionDigits;
}

/** 499 usd -> "$4.99"; 500 jpy -> "¥500". */
export function formatMoney(minor, currency, locale = undefined) {
  if (minor === null || minor === undefined || !currency) return "";
  const code = currency.toUpperCase();
  const major = minor / 10 ** currencyExponent(code);
  return moneyFormatter(code, locale).format(major);
}

/** 75 -> "1:15"; 3725 -> "1:02:05"; never negative. */
export function formatCountdown(seconds) {
  const total = Math.max(0, Math.ceil(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return (h ? `${h}:` : "") + `${mm}:${String(s).padStart(2, "0")}`;
}

/** A countdown said in words, for screen readers. */
export function spokenDuration(seconds) {
  const total = Math.max(0, Math.ceil(seconds));
  const m = Math.floor(total / 60);
  const s = total % 60;
  if (!m) return `${s} seconds`;
  return s ? `${m} minutes ${s} seconds` : `${m} minutes`;
}

export function formatClock(unixSeconds) {
  return new Date(unixSeconds * 1000).toLocaleTimeString([], {
    hour: "2-digit",
    minute: "2-digit",
  });
}

export function percent(part, whole) {
  return whole > 0 ? Math.round((part / whole) * 100) : 0;
}
