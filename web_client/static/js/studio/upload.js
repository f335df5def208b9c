// Uploads with progress: XHR (fetch reports no upload progress), the file
// in multipart field `file`, the answer's JSON body or the server's message.

export function uploadFile(url, file, bearer, onProgress = () => {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    if (bearer) xhr.setRequestHeader("Authorization", `Bearer ${bearer}`);
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (ev) => ev.lengthComputable && onProgress(ev.loaded / ev.total));
    xhr.addEventListener("load", () => {
      const body = xhr.response || {};
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new Error(body?.error?.message || `the server answered ${xhr.status}`));
    });
    xhr.addEventListener("error", () => reject(new Error("The upload was interrupted. Check your connection.")));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}
