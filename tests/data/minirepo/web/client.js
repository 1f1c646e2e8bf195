/**
 * Retry an async function with exponential backoff until it succeeds.
 * @param {Function} fn the function to call
 * @param {number} attempts how many tries
 */
async function retry(fn, attempts = 3, delay = 100) {
  for (let i = 0; i < attempts; i++) {
    try {
      return await fn();
    } catch (error) {
      if (i === attempts - 1) throw error;
      await new Promise((resolve) => setTimeout(resolve, delay * 2 ** i));
    }
  }
}

/**
 * Build a query string from an object of parameters, skipping empty values.
 */
function buildQuery(params) {
  return Object.entries(params)
    .filter(([, value]) => value !== undefined && value !== null && value !== "")
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`)
    .join("&");
}

/**
 * Debounce a function so that it runs only after calls stop for the given delay.
 */
function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/**
 * Group the items of an array by the key that a callback returns.
 */
function groupBy(items, keyOf) {
  const groups = {};
  for (const item of items) {
    const key = keyOf(item);
    (groups[key] = groups[key] || []).push(item);
  }
  return groups;
}

/** Parse the cookies of a request header into a plain object. */
function parseCookies(header) {
  const cookies = {};
  for (const part of header.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name) cookies[name] = decodeURIComponent(rest.join("="));
  }
  return cookies;
}
