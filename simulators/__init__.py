"""Simulated Điện Biên Phủ field devices (``ioc sim``); see ``simulators/README.md``.

Layout: ``fleet`` (device lists from ``data/dien-bien-phu.json``), ``world`` (sun, weather, calendar),
``devices/`` (one model per kind), ``scenario`` (+ ``scenarios/*.json``), ``generator`` (pure payload stream),
``mqtt`` + ``publisher`` (live runs, back-fill), ``recording`` (record/replay), ``cli``.
"""
