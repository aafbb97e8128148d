"""Every validation rule: a stable code, its group, severity, ISO 19157 quality
element, and its message in French and English (``{…}`` filled from the issue)."""
from __future__ import annotations

from dataclasses import dataclass

ERROR, WARNING = 'error', 'warning'

# ISO 19157 data quality elements
FORMAT = 'logical consistency / format consistency'
TOPOLOGY = 'logical consistency / topological consistency'
DOMAIN = 'logical consistency / domain consistency'
CONCEPT = 'logical consistency / conceptual consistency'
OMISSION = 'completeness / omission'
COMMISSION = 'completeness / commission'
POSITION = 'positional accuracy / absolute or external accuracy'


@dataclass(frozen=True)
class Rule:
    code: str
    group: str
    severity: str
    iso19157: str
    fr: str
    en: str


_RULES = [
    Rule('F002', 'format', ERROR, FORMAT,
         "Aucun système de coordonnées : le fichier n'en déclare pas et aucun n'est donné (entrée crs)",
         'No coordinate reference system: the file declares none and none was given (crs input)'),
    Rule('F003', 'format', ERROR, FORMAT,
         "Type de géométrie {found} non admis pour {feature_type} (admis : {allowed})",
         'Geometry type {found} not accepted for {feature_type} (accepted: {allowed})'),
    Rule('F004', 'format', ERROR, FORMAT, "Anneau non fermé (premier et dernier sommets différents)",
         'Ring not closed (first and last positions differ)'),
    Rule('F005', 'format', ERROR, FORMAT, "Anneau trop court : {count} positions, 4 au moins",
         'Ring too short: {count} positions, at least 4'),
    Rule('F006', 'format', ERROR, FORMAT, "Coordonnée non numérique ou non finie : {value}",
         'Coordinate not a finite number: {value}'),
    Rule('F007', 'format', ERROR, FORMAT,
         "Système de coordonnées {crs} non admis par le modèle (admis : {accepted})",
         'Coordinate reference system {crs} not accepted by the model (accepted: {accepted})'),
    Rule('F008', 'format', ERROR, OMISSION, "Objet sans géométrie", 'Feature without geometry'),
    Rule('F009', 'format', ERROR, FORMAT,
         "Position de {count} nombres : 2 ou 3 attendus (RFC 7946), sens des suivants inconnu",
         'Position of {count} numbers: 2 or 3 expected (RFC 7946), the meaning of more is unknown'),
    Rule('G001', 'geometry', ERROR, TOPOLOGY, "Géométrie invalide (OGC) : {reason}",
         'Invalid geometry (OGC): {reason}'),
    Rule('G002', 'geometry', WARNING, TOPOLOGY, "{count} sommet(s) répété(s) consécutivement",
         '{count} repeated consecutive vertex(es)'),
    Rule('G003', 'geometry', WARNING, TOPOLOGY,
         "Orientation d'anneau : l'extérieur doit tourner dans le sens inverse des aiguilles d'une montre (RFC 7946)",
         'Ring orientation: exterior rings should be counter-clockwise (RFC 7946)'),
    Rule('G004', 'geometry', WARNING, TOPOLOGY, "Pic : angle de {angle_deg}° au sommet (seuil {threshold}°)",
         'Spike: {angle_deg}° angle at a vertex (threshold {threshold}°)'),
    Rule('G005', 'geometry', WARNING, TOPOLOGY,
         "Polygone en lanière (finesse {thinness}, surface {area_m2} m²)",
         'Sliver polygon (thinness {thinness}, area {area_m2} m²)'),
    Rule('G006', 'geometry', ERROR, TOPOLOGY, "Géométrie vide", 'Empty geometry'),
    Rule('G007', 'geometry', ERROR, CONCEPT, "Surface {area_m2} m² sous le minimum ({threshold} m²)",
         'Area {area_m2} m² below the minimum ({threshold} m²)'),
    Rule('G008', 'geometry', ERROR, CONCEPT, "Longueur {length_m} m sous le minimum ({threshold} m)",
         'Length {length_m} m below the minimum ({threshold} m)'),
    Rule('G009', 'geometry', WARNING, CONCEPT,
         "Sommets espacés de {spacing_m} m, au-delà du maximum ({threshold} m)",
         'Vertices {spacing_m} m apart, above the maximum ({threshold} m)'),
    Rule('T001', 'territory', ERROR, DOMAIN,
         "Coordonnées hors du domaine de validité de {crs}",
         'Coordinates outside the area of use of {crs}'),
    Rule('T002', 'territory', ERROR, DOMAIN, "Objet hors de Mayotte (à {distance_m} m du territoire)",
         'Feature outside Mayotte ({distance_m} m from the territory)'),
    Rule('T003', 'territory', ERROR, POSITION,
         "Latitude et longitude inversées : une fois échangées, l'objet tombe à Mayotte",
         'Latitude and longitude swapped: once exchanged, the feature lies in Mayotte'),
    Rule('R001', 'reference', ERROR, CONCEPT,
         "L'objet n'est pas dans la commune {code} ({name}) : à {distance_m} m, tolérance {tolerance_m} m "
         "(dépassée de {missed_by_m} m){inside}",
         'The feature is not in municipality {code} ({name}): {distance_m} m away, tolerance '
         '{tolerance_m} m (missed by {missed_by_m} m){inside_en}'),
    Rule('R002', 'reference', ERROR, TOPOLOGY,
         "Chevauchement de {area_m2} m² avec l'objet {other} de la même soumission (tolérance {tolerance_m2} m²)",
         'Overlaps feature {other} of the same submission by {area_m2} m² (tolerance {tolerance_m2} m²)'),
    Rule('R003', 'reference', WARNING, COMMISSION,
         "Doublon probable de l'objet {platform_id} déjà publié ({collection}, recouvrement {iou}) : "
         "reprendre son identifiant",
         'Probable duplicate of {platform_id} already published ({collection}, overlap {iou}): '
         'reuse its identifier'),
    Rule('A001', 'attributes', ERROR, OMISSION, "Attribut obligatoire absent : {attribute}",
         'Mandatory attribute missing: {attribute}'),
    Rule('A002', 'attributes', ERROR, FORMAT, "{attribute} : {value} n'est pas du type {type}",
         '{attribute}: {value} is not of type {type}'),
    Rule('A003', 'attributes', ERROR, DOMAIN,
         "{attribute} : {value} hors de la liste de codes ({allowed})",
         '{attribute}: {value} not in the code list ({allowed})'),
    Rule('A004', 'attributes', ERROR, DOMAIN, "{attribute} : {value} ne suit pas le motif {pattern}",
         '{attribute}: {value} does not match the pattern {pattern}'),
    Rule('A005', 'attributes', ERROR, DOMAIN, "{attribute} : {value} n'est pas valide, attendu : {reference}",
         '{attribute}: {value} is not valid, expected: {reference_en}'),
    Rule('A006', 'attributes', ERROR, COMMISSION,
         "Identifiant {attribute} = {value} en double (aussi objets {others})",
         'Duplicate identifier {attribute} = {value} (also features {others})'),
    Rule('A007', 'attributes', WARNING, CONCEPT, "Attribut {attribute} absent du modèle",
         'Attribute {attribute} is not in the model'),
    Rule('A008', 'attributes', WARNING, CONCEPT,
         "{attribute} : {value} n'est pas le nom de la commune {code} ({code_attribute}), "
         "attendu : {expected}",
         '{attribute}: {value} is not the name of commune {code} ({code_attribute}), '
         'expected: {expected}'),
]

_RULES += [
    Rule('RA01', 'format', ERROR, FORMAT,
         "Système de coordonnées du raster absent ou non admis ({crs} ; admis : {accepted})",
         'Raster CRS missing or not accepted ({crs}; accepted: {accepted})'),
    Rule('RA02', 'territory', ERROR, DOMAIN, "L'emprise du raster ne couvre pas Mayotte",
         'The raster footprint does not cover Mayotte'),
    Rule('RA03', 'format', ERROR, FORMAT, "Résolution non déclarée ou invalide : {reason}",
         'Resolution not declared or invalid: {reason}'),
    Rule('RA04', 'format', WARNING, CONCEPT,
         "Pixels de {pixel_m} m, plus grossiers que le maximum ({threshold} m)",
         'Pixels of {pixel_m} m, coarser than the maximum ({threshold} m)'),
    Rule('RA05', 'format', ERROR, OMISSION, "Valeur nodata non déclarée (bande {band})",
         'No nodata value declared (band {band})'),
    Rule('RA06', 'format', ERROR, OMISSION, "Bande {band} vide : aucun pixel valide",
         'Band {band} is empty: no valid pixel'),
    Rule('RA07', 'format', ERROR, FORMAT, "{count} bande(s) au lieu de {expected}",
         '{count} band(s) instead of {expected}'),
]

RULES = {r.code: r for r in _RULES}
