//! Where a probe keeps its state (control identity, known peers).

use std::path::{Path, PathBuf};

/// The state directory when none is given: `$PROBE_STATE_DIR`; as root, `/var/lib/probe`
/// when `/var/lib` exists; otherwise `$XDG_DATA_HOME/probe`, else `~/.local/share/probe`.
/// `None` when none of these can be found (no `HOME`).
pub fn default_state_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    choose(
        var("PROBE_STATE_DIR").map(PathBuf::from),
        crate::io::Privileges::detect().is_ok_and(|p| p.euid == 0)
            && Path::new("/var/lib").is_dir(),
        var("XDG_DATA_HOME").map(PathBuf::from),
        var("HOME").map(PathBuf::from),
    )
}

/// The choice of [`default_state_dir`], from the facts it reads.
fn choose(
    explicit: Option<PathBuf>,
    root_with_var_lib: bool,
    xdg_data_home: Option<PathBuf>,
    home: Option<PathBuf>,
) -> Option<PathBuf> {
    if let Some(dir) = explicit {
        return Some(dir);
    }
    if root_with_var_lib {
        return Some(PathBuf::from("/var/lib/probe"));
    }
    if let Some(data) = xdg_data_home.filter(|p| p.is_absolute()) {
        return Some(data.join("probe"));
    }
    home.map(|h| h.join(".local/share/probe"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence() {
        let p = |s: &str| Some(PathBuf::from(s));
        assert_eq!(choose(p("/s"), true, p("/x"), p("/h")), p("/s"));
        assert_eq!(choose(None, true, p("/x"), p("/h")), p("/var/lib/probe"));
        assert_eq!(choose(None, false, p("/x"), p("/h")), p("/x/probe"));
        // A relative XDG_DATA_HOME is invalid per the XDG spec and ignored.
        assert_eq!(
            choose(None, false, p("rel"), p("/h")),
            p("/h/.local/share/probe")
        );
        assert_eq!(choose(None, false, None, None), None);
    }
}
