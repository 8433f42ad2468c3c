"""attribution: shares (codes, QR, posters), touches, the visitor cookie, funnel events, fission figures.

The contract other modules rely on (keep the signature):

    record_touch(session, *, merchant_id, channel, customer_id=None, visitor_id=None, share_code=None,
                 sharer_staff_id=None, sharer_customer_id=None, target_type=None, target_id=None,
                 campaign=None, at=None) -> Touch

writes one touch row and, when the customer is known, hands it to `ownership.apply_touch` so the
binding rules run. Channels (`CHANNELS`) are the merchants' words for where a touch came from.
"""

CHANNELS = ("store_qr", "guide_qr", "chat", "moments", "community", "live", "ad", "payment", "search", "direct",
            "oa", "wecom")
