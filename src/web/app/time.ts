// Times as the conversation shows them: the clock time for today, else the date too. Pure (the
// formatter comes from the browser's Intl for the chosen language).

export function formatTime(at: number, now: number, lang: string): string {
  const date = new Date(at);
  const sameDay = new Date(now).toDateString() === date.toDateString();
  return sameDay
    ? new Intl.DateTimeFormat(lang, { hour: '2-digit', minute: '2-digit' }).format(date)
    : new Intl.DateTimeFormat(lang, { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' }).format(date);
}

export function isoTime(at: number): string {
  return new Date(at).toISOString();
}
