"""filestream, OpenMSIStream 1.8.8 and the bare-Kafka ceiling side by side: ``python -m bench.compare``.

One module per system compared (``filestream``, ``openmsistream``, ``ceiling``), what a run
records (``run``), the report and chart (``report``); the command and its workload in
``__main__``.
"""
