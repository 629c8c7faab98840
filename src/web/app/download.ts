// A file made in the page, handed to the browser as a download ("Save conversation").

/** Hands the text to the browser as a download. */
export function download(fileName: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/plain;charset=utf-8' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = fileName;
  link.style.display = 'none';
  document.body.append(link);
  link.click();
  link.remove();
  // the download has its own copy once started; a moment later the URL can go
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
