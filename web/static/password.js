// The server's rule for a new password (accounts/password.go), which the
// portal and the reset page check before sending one, so that a password it
// would refuse is not sent: at least minChars characters (Unicode code
// points, as the server counts them), at most maxBytes bytes of UTF-8.
export const minChars = 10;
export const maxBytes = 256;

// passwordProblem says what is wrong with a new password typed twice, or "".
export function passwordProblem(pw, again) {
  if ([...pw].length < minChars) return `The new password is too short: use at least ${minChars} characters.`;
  if (new TextEncoder().encode(pw).length > maxBytes) return `The new password is too long: at most ${maxBytes} bytes (fewer characters when they are not plain letters).`;
  if (pw !== again) return "The two passwords are not the same (they differ): type the new password twice.";
  return "";
}
