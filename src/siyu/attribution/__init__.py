"""Attribution: share links, QR codes, posters, touches, funnel events, customer ownership (bindings) and order attribution."""
