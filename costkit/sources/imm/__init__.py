"""IMM task records: the ListTasks collector, notification and dump importers, and the record normaliser."""
