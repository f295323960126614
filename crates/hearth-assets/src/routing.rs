//! Which file answers a decoded path, by `html_handling`, and what happens
//! when none does, by `not_found_handling`. Mirrors the rules of Cloudflare's
//! asset worker: a file is served at its canonical URL, every other spelling
//! of that URL is redirected there, but only when the redirect target would
//! serve the very same content (compared by ETag).

use hearth_config::{HtmlHandling, NotFoundHandling};

use crate::fs::{AssetDir, Found};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Intent {
    /// Serve this file with this status (200, or 404 for a 404 page).
    Serve(Found, u16),
    /// Redirect to this decoded path.
    Redirect(String),
}

pub(crate) struct Resolver<'a> {
    pub dir: &'a AssetDir,
    pub html: HtmlHandling,
    pub not_found: NotFoundHandling,
}

fn strip<'p>(p: &'p str, suffix: &str) -> &'p str {
    &p[..p.len() - suffix.len()]
}

impl Resolver<'_> {
    fn exists(&self, p: &str) -> Option<Found> {
        self.dir.find(p)
    }

    fn serve(found: Found) -> Option<Intent> {
        Some(Intent::Serve(found, 200))
    }

    pub fn intent(&self, p: &str) -> Option<Intent> {
        self.intent_inner(p, false)
    }

    fn intent_inner(&self, p: &str, skip_redirects: bool) -> Option<Intent> {
        match self.html {
            HtmlHandling::AutoTrailingSlash => self.auto(p, skip_redirects),
            HtmlHandling::ForceTrailingSlash => self.force(p, skip_redirects),
            HtmlHandling::DropTrailingSlash => self.drop_slash(p, skip_redirects),
            HtmlHandling::None => match self.exists(p) {
                Some(f) => Self::serve(f),
                None => self.not_found(p),
            },
        }
    }

    /// A redirect from the path that names `file` to `destination`, if
    /// nothing lives at `destination` itself and `destination` would serve
    /// the same content as `file`.
    fn redirect(&self, file: &str, destination: &str, skip: bool) -> Option<Intent> {
        if skip || self.exists(destination).is_some() {
            return None;
        }
        let Some(Intent::Serve(target, _)) = self.intent_inner(destination, true) else {
            return None;
        };
        let source = self.exists(file)?;
        (source.etag == target.etag).then(|| Intent::Redirect(destination.to_string()))
    }

    fn auto(&self, p: &str, skip: bool) -> Option<Intent> {
        let exact = self.exists(p);
        if p.ends_with("/index") {
            if let Some(f) = exact {
                return Self::serve(f);
            }
            let dir = strip(p, "index");
            let bare = strip(p, "/index");
            if let Some(i) = self
                .redirect(&format!("{p}.html"), dir, skip)
                .or_else(|| self.redirect(&format!("{bare}.html"), bare, skip))
            {
                return Some(i);
            }
        } else if p.ends_with("/index.html") {
            let dir = strip(p, "index.html");
            let bare = strip(p, "/index.html");
            if let Some(i) = self
                .redirect(p, dir, skip)
                .or_else(|| self.redirect(&format!("{bare}.html"), bare, skip))
            {
                return Some(i);
            }
        } else if p.ends_with('/') {
            if let Some(f) = self.exists(&format!("{p}index.html")) {
                return Self::serve(f);
            }
            let bare = strip(p, "/");
            if let Some(i) = self.redirect(&format!("{bare}.html"), bare, skip) {
                return Some(i);
            }
        } else if p.ends_with(".html") {
            let bare = strip(p, ".html");
            if let Some(i) = self
                .redirect(p, bare, skip)
                .or_else(|| self.redirect(&format!("{bare}/index.html"), &format!("{bare}/"), skip))
            {
                return Some(i);
            }
        }
        if let Some(f) = exact {
            return Self::serve(f);
        }
        if let Some(f) = self.exists(&format!("{p}.html")) {
            return Self::serve(f);
        }
        if let Some(i) = self.redirect(&format!("{p}/index.html"), &format!("{p}/"), skip) {
            return Some(i);
        }
        self.not_found(p)
    }

    fn force(&self, p: &str, skip: bool) -> Option<Intent> {
        let exact = self.exists(p);
        if p.ends_with("/index") {
            if let Some(f) = exact {
                return Self::serve(f);
            }
            let dir = strip(p, "index");
            let bare = strip(p, "/index");
            if let Some(i) = self
                .redirect(&format!("{p}.html"), dir, skip)
                .or_else(|| self.redirect(&format!("{bare}.html"), dir, skip))
            {
                return Some(i);
            }
        } else if p.ends_with("/index.html") {
            let dir = strip(p, "index.html");
            let bare = strip(p, "/index.html");
            if let Some(i) = self
                .redirect(p, dir, skip)
                .or_else(|| self.redirect(&format!("{bare}.html"), dir, skip))
            {
                return Some(i);
            }
        } else if p.ends_with('/') {
            if let Some(f) = self.exists(&format!("{p}index.html")) {
                return Self::serve(f);
            }
            if let Some(f) = self.exists(&format!("{}.html", strip(p, "/"))) {
                return Self::serve(f);
            }
        } else if p.ends_with(".html") {
            let bare = strip(p, ".html");
            if let Some(i) = self.redirect(p, &format!("{bare}/"), skip) {
                return Some(i);
            }
            if let Some(f) = exact {
                // Both foo.html and foo/index.html exist: foo.html stays at its own name.
                return Self::serve(f);
            }
            if let Some(i) = self.redirect(&format!("{bare}/index.html"), &format!("{bare}/"), skip)
            {
                return Some(i);
            }
        }
        if let Some(f) = exact {
            return Self::serve(f);
        }
        if let Some(i) = self
            .redirect(&format!("{p}.html"), &format!("{p}/"), skip)
            .or_else(|| self.redirect(&format!("{p}/index.html"), &format!("{p}/"), skip))
        {
            return Some(i);
        }
        self.not_found(p)
    }

    fn drop_slash(&self, p: &str, skip: bool) -> Option<Intent> {
        let exact = self.exists(p);
        if p.ends_with("/index") {
            if let Some(f) = exact {
                return Self::serve(f);
            }
            let found = if p == "/index" {
                self.redirect("/index.html", "/", skip)
            } else {
                let bare = strip(p, "/index");
                self.redirect(&format!("{bare}.html"), bare, skip)
                    .or_else(|| self.redirect(&format!("{p}.html"), bare, skip))
            };
            if found.is_some() {
                return found;
            }
        } else if p.ends_with("/index.html") {
            if p == "/index.html" {
                if let Some(i) = self.redirect("/index.html", "/", skip) {
                    return Some(i);
                }
            } else {
                let bare = strip(p, "/index.html");
                if let Some(i) = self.redirect(p, bare, skip) {
                    return Some(i);
                }
                if let Some(f) = exact {
                    // Both foo.html and foo/index.html exist: this one stays at its own name.
                    return Self::serve(f);
                }
                if let Some(i) = self.redirect(&format!("{bare}.html"), bare, skip) {
                    return Some(i);
                }
            }
        } else if p.ends_with('/') {
            if p == "/" {
                if let Some(f) = self.exists("/index.html") {
                    return Self::serve(f);
                }
            } else {
                let bare = strip(p, "/");
                if let Some(i) = self
                    .redirect(&format!("{bare}.html"), bare, skip)
                    .or_else(|| self.redirect(&format!("{bare}/index.html"), bare, skip))
                {
                    return Some(i);
                }
            }
        } else if p.ends_with(".html") {
            let bare = strip(p, ".html");
            if let Some(i) = self
                .redirect(p, bare, skip)
                .or_else(|| self.redirect(&format!("{bare}/index.html"), bare, skip))
            {
                return Some(i);
            }
        }
        if let Some(f) = exact {
            return Self::serve(f);
        }
        if let Some(f) = self
            .exists(&format!("{p}.html"))
            .or_else(|| self.exists(&format!("{p}/index.html")))
        {
            return Self::serve(f);
        }
        self.not_found(p)
    }

    fn not_found(&self, p: &str) -> Option<Intent> {
        match self.not_found {
            NotFoundHandling::SinglePageApplication => {
                self.exists("/index.html").map(|f| Intent::Serve(f, 200))
            }
            NotFoundHandling::Page404 => {
                // The nearest 404.html walking up from the request's folder.
                let mut cwd = p;
                while !cwd.is_empty() {
                    cwd = &cwd[..cwd.rfind('/').unwrap_or(0)];
                    if let Some(f) = self.exists(&format!("{cwd}/404.html")) {
                        return Some(Intent::Serve(f, 404));
                    }
                }
                None
            }
            NotFoundHandling::None => None,
        }
    }
}
