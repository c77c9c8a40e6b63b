//! Under a real systemd as PID 1 (systemd-nspawn), from the .deb built the README's way.
