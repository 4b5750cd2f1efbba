"""Fleet metrics: device liveness and the few critical readings, computed in the database and exported as
Prometheus series per area (city / ward / cabinet / DMA), never per device for the big families."""
