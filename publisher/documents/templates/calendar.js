/* The posting calendar: opens a card's preview and filters channels. Builds every node with
   textContent (never innerHTML); portal HTML goes only into a sandboxed iframe's srcdoc. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("calendar-data").textContent);
  var dialog = document.getElementById("preview");
  var body = document.getElementById("preview-body");
  var opener = null;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function field(post, name) {
    var value = post.fields[name];
    return typeof value === "string" ? value.trim() : "";
  }

  function initials(name) {  // "Sở Tư pháp tỉnh Bắc Giang" → "STP"
    return name.split(/\s+/).filter(Boolean).slice(0, 3).map(function (w) {
      return w[0].toUpperCase();
    }).join("");
  }

  function withHashtags(parent, text) {
    var re = /#[\p{L}\p{N}_]+/gu;
    var last = 0;
    var match;
    while ((match = re.exec(text)) !== null) {
      parent.appendChild(document.createTextNode(text.slice(last, match.index)));
      parent.appendChild(el("span", "hashtag", match[0]));
      last = match.index + match[0].length;
    }
    parent.appendChild(document.createTextNode(text.slice(last)));
  }

  function paragraphs(parent, text) {
    text.split(/\n\s*\n/).forEach(function (chunk) {
      if (chunk.trim()) parent.appendChild(el("p", null, chunk.trim()));
    });
  }

  function placeholder(label, url) {
    var box = el("div", "placeholder");
    box.appendChild(el("span", null, label + (url ? ": " + url : "") + " (không tải khi xem trước)"));
    return box;
  }

  function thumbOf(picture) {  // the embedded thumbnail of a picture, if the page has it
    var thumb = picture.thumb ? data.pictures[picture.thumb] : null;
    return thumb && /^data:image\/(jpeg|png);base64,/.test(thumb.src) ? thumb : null;
  }

  function image(picture, cls) {  // a picture where the platform shows it, or a placeholder
    var thumb = thumbOf(picture);
    if (!thumb) return placeholder(picture.label, picture.url || picture.name);
    var img = el("img", cls);
    img.src = thumb.src;
    img.alt = picture.alt;
    img.title = picture.alt;
    return img;
  }

  function covers(post) {
    return post.pictures.filter(function (p) { return p.role === "cover"; });
  }

  function others(post) {
    return post.pictures.filter(function (p) { return p.role !== "cover"; });
  }

  function pictureList(post) {  // every picture of the post: what it is, its file, its alt text
    var box = el("section", "pics");
    box.appendChild(el("h3", "pics-title", "Ảnh của bài (" + post.pictures.length + ")"));
    var list = el("ul", "pics-list");
    post.pictures.forEach(function (picture) {
      var item = el("li", "pic");
      if (thumbOf(picture)) item.appendChild(image(picture, "pic-thumb"));
      else item.appendChild(el("span", "pic-thumb pic-none", "Không có ảnh xem trước"));
      var about = el("div", "pic-about");
      about.appendChild(el("p", "pic-role", picture.label));
      about.appendChild(el("p", "pic-alt", picture.alt ? "“" + picture.alt + "”" : "Không có mô tả (ảnh trang trí)"));
      about.appendChild(el("p", "pic-file", picture.name + (picture.about ? " · " + picture.about : "")));
      if (picture.url && /^https?:\/\//i.test(picture.url)) {
        var link = el("a", "pic-url", picture.url);
        link.href = picture.url;
        link.target = "_blank";
        link.rel = "noopener noreferrer";
        about.appendChild(link);
      }
      item.appendChild(about);
      list.appendChild(item);
    });
    box.appendChild(list);
    return box;
  }

  function facebook(post) {
    var card = el("article", "fb");
    var head = el("div", "fb-head");
    head.appendChild(el("div", "avatar", initials(data.organisation)));
    var who = el("div");
    who.appendChild(el("div", "fb-name", data.organisation));
    who.appendChild(el("div", "fb-time", post.date + " · Công khai"));
    head.appendChild(who);
    card.appendChild(head);
    var text = el("div", "fb-text");
    withHashtags(text, field(post, "message") || post.text.trim());
    card.appendChild(text);
    if (post.pictures.length) {
      var photos = el("div", "fb-photos" + (post.pictures.length > 1 ? " fb-many" : ""));
      post.pictures.forEach(function (p) { photos.appendChild(image(p, "fb-photo")); });
      card.appendChild(photos);
    }
    if (field(post, "link")) card.appendChild(el("div", "fb-link", "Liên kết: " + field(post, "link")));
    var actions = el("div", "fb-actions");
    ["Thích", "Bình luận", "Chia sẻ"].forEach(function (a) { actions.appendChild(el("span", null, a)); });
    card.appendChild(actions);
    return card;
  }

  function zalo(post) {
    var card = el("article", "zalo");
    var bar = el("div", "zalo-bar");
    bar.appendChild(el("span", "zalo-badge", "OA"));
    bar.appendChild(el("span", null, data.organisation));
    card.appendChild(bar);
    covers(post).forEach(function (p) { card.appendChild(image(p, "zalo-cover")); });
    var main = el("div", "zalo-main");
    main.appendChild(el("h3", "zalo-title", field(post, "title") || post.title));
    var author = field(post, "author");
    main.appendChild(el("p", "zalo-meta", (author ? author + " · " : "") + post.date));
    if (field(post, "description")) main.appendChild(el("p", "zalo-desc", field(post, "description")));
    var text = el("div", "zalo-body");
    paragraphs(text, field(post, "body") || post.text);
    main.appendChild(text);
    others(post).forEach(function (p) { main.appendChild(image(p, "zalo-image")); });
    card.appendChild(main);
    return card;
  }

  function portal(post, channel) {
    var card = el("article", "portal");
    var chrome = el("div", "portal-chrome");
    chrome.appendChild(el("i"));
    chrome.appendChild(el("i"));
    chrome.appendChild(el("i"));
    chrome.appendChild(el("span", "portal-address", channel));
    card.appendChild(chrome);
    card.appendChild(el("div", "portal-site", channel));
    var main = el("div", "portal-main");
    main.appendChild(el("p", "portal-crumb", "Trang chủ › Tin tức – Sự kiện"));
    main.appendChild(el("h3", "portal-title", field(post, "title") || post.title));
    main.appendChild(el("p", "portal-date", post.when));
    if (field(post, "excerpt")) {
      var excerpt = el("p", "portal-excerpt");
      excerpt.appendChild(el("b", null, "Tóm tắt (trang danh sách): "));
      excerpt.appendChild(document.createTextNode(field(post, "excerpt")));
      main.appendChild(excerpt);
    }
    covers(post).forEach(function (p) { main.appendChild(image(p, "portal-cover")); });
    card.appendChild(main);
    var frame = document.createElement("iframe");
    frame.setAttribute("sandbox", "");  // before srcdoc: no script, form or navigation runs in it
    frame.setAttribute("title", "Nội dung bài viết trên cổng");
    frame.setAttribute("referrerpolicy", "no-referrer");
    frame.srcdoc =
      '<!doctype html><html lang="vi"><head><meta charset="utf-8"><style>' +
      "body{font-family:'Times New Roman',Georgia,'Liberation Serif',serif;font-size:17px;" +
      "line-height:1.6;color:#1f2933;margin:14px 18px}p{margin:0 0 12px}" +
      "h2,h3{font-family:Arial,'Liberation Sans',sans-serif;color:#14213d}" +
      "img{max-width:100%}.nguon{text-align:right}</style></head><body>" +
      (field(post, "content") || post.text) + "</body></html>";
    card.appendChild(frame);
    if (others(post).length) {
      var gallery = el("div", "portal-images");
      others(post).forEach(function (p) { gallery.appendChild(image(p, "portal-image")); });
      card.appendChild(gallery);
    }
    return card;
  }

  function status(post) {
    var box = document.getElementById("preview-status");
    box.textContent = "";
    box.appendChild(el("span", "chip tone-" + post.tone, post.state));
    if (post.live && /^https?:\/\//i.test(post.live)) {
      var link = el("a", null, "Xem bài đã đăng" + (post.published ? " (" + post.published + ")" : ""));
      link.href = post.live;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      box.appendChild(link);
    }
    if (post.reason) box.appendChild(el("span", "reason-text", post.reason));
  }

  function open(id, from) {
    var post = data.posts[id];
    if (!post) return;
    var item = from.closest(".post");
    var channel = item.querySelector(".card-channel").textContent;
    dialog.className = item.className.split(/\s+/).filter(function (c) {
      return c.indexOf("ch-") === 0;
    }).join(" ") + " family-" + (post.family || "text");
    document.getElementById("preview-channel").textContent = channel;
    document.getElementById("preview-when").textContent = post.when;
    document.getElementById("preview-kind").textContent = post.kind;
    document.getElementById("preview-title").textContent = post.title;
    status(post);
    body.textContent = "";
    var labels = { facebook: "Xem trước trên Facebook", zalo: "Xem trước bài viết Zalo OA", portal: "Xem trước trên cổng thông tin" };
    body.appendChild(el("p", "pv-label", labels[post.family] || "Nội dung"));
    if (post.family === "facebook") body.appendChild(facebook(post));
    else if (post.family === "zalo") body.appendChild(zalo(post));
    else if (post.family === "portal") body.appendChild(portal(post, channel));
    else body.appendChild(el("div", "plain-text", post.text));
    if (post.pictures.length) body.appendChild(pictureList(post));
    opener = from;
    dialog.showModal();
    document.getElementById("preview-close").focus();
  }

  document.addEventListener("click", function (event) {
    var card = event.target.closest("button[data-post]");
    if (card) open(card.getAttribute("data-post"), card);
    var toggle = event.target.closest("button[data-filter]");
    if (toggle) {
      var shown = toggle.getAttribute("aria-pressed") !== "true";
      toggle.setAttribute("aria-pressed", shown ? "true" : "false");
      document.querySelectorAll(".post[data-channel]").forEach(function (post) {
        if (post.getAttribute("data-channel") === toggle.getAttribute("data-filter")) post.hidden = !shown;
      });
    }
  });
  document.getElementById("print").addEventListener("click", function () { window.print(); });
  document.getElementById("preview-close").addEventListener("click", function () { dialog.close(); });
  dialog.addEventListener("click", function (event) {
    if (event.target === dialog) dialog.close();  // a click on the backdrop
  });
  dialog.addEventListener("close", function () {
    body.textContent = "";
    if (opener) opener.focus();
  });
})();
