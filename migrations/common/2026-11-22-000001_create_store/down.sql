DROP TABLE audit_events;
DROP TABLE objections;
DROP TABLE patient_links;
