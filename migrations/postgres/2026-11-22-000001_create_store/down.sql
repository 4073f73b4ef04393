DROP TABLE audit_events;
DROP TABLE objections;
DROP FUNCTION refuse_change();
DROP TABLE patient_links;
